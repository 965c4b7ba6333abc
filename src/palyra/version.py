"""Product and protocol versions that manifests are checked against (reference §1.7)."""

from __future__ import annotations

from palyra import __version__

PRODUCT_VERSION: str = __version__
CANONICAL_PROTOCOL_MAJOR: int = 1
