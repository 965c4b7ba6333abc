"""A skill directory run end to end, the way an installed skill runs: built, packaged and
signed (with a throwaway key unless one is given), verified, audited, and each call made
through ``run_tool`` in the real sandbox — input and output checked against the manifest's
schemas, grants derived from the manifest and a policy.

This is what a skill's own tests use (``palyra skills new`` writes one), so a test that
passes here exercises the same code path as the daemon, not a look-alike::

    skill = LocalSkill.open(Path(__file__).parent.parent)
    assert skill.call("add", {"title": "milk"}) == {...}
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from palyra.authoring.build_cache import BuildError, Progress, default_cache_dir, quiet
from palyra.authoring.skill_dir import BuiltSkill, build_skill, read_manifest
from palyra.runtime.context import HostServices
from palyra.runtime.sandbox import CallResult, Sandbox
from palyra.runtime.tools import RuntimePolicy, run_tool
from palyra.skills.audit import AuditPolicy, AuditReport, audit_verified
from palyra.skills.build import build_signed_skill_artifact
from palyra.skills.inspect import SkillInspection, inspect_skill_artifact
from palyra.skills.keys import SigningKey
from palyra.skills.manifest import SkillManifest
from palyra.skills.trust import TrustStore
from palyra.skills.verify import verify_inspection

MODULE_ENTRY = "skill.wasm"


def code_cache_dir() -> Path:
    """Compiled machine code for development runs: ``PALYRA_CODE_CACHE``, else next to the
    build cache. Files there are MAC'd under a per-directory key (see DiskCodeCache)."""
    explicit = os.environ.get("PALYRA_CODE_CACHE")
    return Path(explicit) if explicit else default_cache_dir().parent / "code"


@dataclass
class LocalSkill:
    directory: Path
    built: BuiltSkill
    artifact: bytes
    inspection: SkillInspection
    audit: AuditReport
    services: HostServices
    code_cache: Path
    _sandbox: Sandbox | None = field(default=None, repr=False)
    _owned_storage: Path | None = field(default=None, repr=False)

    @classmethod
    def open(
        cls,
        directory: Path,
        *,
        key: SigningKey | None = None,
        services: HostServices | None = None,
        build_cache: Path | None = None,
        code_cache: Path | None = None,
        progress: Progress = quiet,
    ) -> LocalSkill:
        """Build, package, sign, verify and audit ``directory``; a failed audit is an error
        (a skill that would be quarantined must not look like it works).

        ``services`` defaults to fresh storage in a temporary directory (removed by
        ``close()`` or a ``with`` block) and an empty vault.
        """
        directory = directory.resolve()
        text, _manifest = read_manifest(directory)
        with tempfile.TemporaryDirectory(prefix="palyra-local-") as tmp:
            built = build_skill(
                directory, Path(tmp) / MODULE_ENTRY, cache_dir=build_cache, progress=progress
            )
            module = built.result.output.read_bytes()
        key = key or SigningKey.generate()
        artifact = build_signed_skill_artifact(text, [(MODULE_ENTRY, module)], key).artifact
        inspection = inspect_skill_artifact(artifact)
        store = TrustStore().with_extra_trust([(inspection.manifest.publisher, key.public_key_hex)])
        verification = verify_inspection(inspection, store, allow_tofu=False)
        report = audit_verified(verification, AuditPolicy())
        if report.should_quarantine:
            raise BuildError(
                f"{inspection.manifest.skill_id} fails its audit: "
                + "; ".join(report.quarantine_reasons)
            )
        owned = None
        if services is None:
            owned = Path(tempfile.mkdtemp(prefix="palyra-local-storage-"))
            services = HostServices(storage_root=owned)
        return cls(
            directory=directory,
            built=built,
            artifact=artifact,
            inspection=inspection,
            audit=report,
            services=services,
            code_cache=code_cache or code_cache_dir(),
            _owned_storage=owned,
        )

    def close(self) -> None:
        """Remove the temporary storage ``open`` created (given services are left alone)."""
        if self._owned_storage is not None:
            shutil.rmtree(self._owned_storage, ignore_errors=True)
            self._owned_storage = None

    def __enter__(self) -> LocalSkill:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def manifest(self) -> SkillManifest:
        return self.inspection.manifest

    @property
    def module(self) -> bytes:
        return self.inspection.entries[f"modules/{MODULE_ENTRY}"]

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            self._sandbox = Sandbox(cache_dir=self.code_cache, services=self.services)
        return self._sandbox

    def run(self, tool: str, input_value: Any, policy: RuntimePolicy | None = None) -> CallResult:
        """One call by tool id or name. The default policy honours everything the manifest
        declares (and nothing more); pass one to test a narrower operator policy."""
        return run_tool(
            self.sandbox,
            self.inspection,
            tool,
            input_value,
            policy or RuntimePolicy.allow_declared(),
        )

    def call(self, tool: str, input_value: Any, policy: RuntimePolicy | None = None) -> Any:
        """The tool's output (a typed error when the call fails)."""
        return self.run(tool, input_value, policy).output

    def describe(self) -> Any:
        """What a Python component reports about its tools (``describe`` export)."""
        return self.sandbox.describe_component(self.module)
