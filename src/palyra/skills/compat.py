"""Runtime compatibility of a manifest with this build (§1.7)."""

from __future__ import annotations

from palyra.skills.errors import (
    RuntimeVersionAboveMaximumError,
    UnsupportedProtocolMajorError,
    UnsupportedRuntimeVersionError,
)
from palyra.skills.manifest import SkillManifest
from palyra.skills.values import parse_semver
from palyra.version import CANONICAL_PROTOCOL_MAJOR, PRODUCT_VERSION


def assert_runtime_compatibility(
    manifest: SkillManifest,
    *,
    protocol_major: int = CANONICAL_PROTOCOL_MAJOR,
    product_version: str = PRODUCT_VERSION,
) -> None:
    compat = manifest.compat
    if compat.required_protocol_major > protocol_major:
        raise UnsupportedProtocolMajorError(compat.required_protocol_major, protocol_major)
    current = parse_semver("product version", product_version)
    if parse_semver("compat.min_palyra_version", compat.min_palyra_version) > current:
        raise UnsupportedRuntimeVersionError(compat.min_palyra_version, product_version)
    maximum = compat.max_palyra_version
    if maximum is not None and current > parse_semver("compat.max_palyra_version", maximum):
        raise RuntimeVersionAboveMaximumError(maximum, product_version)
