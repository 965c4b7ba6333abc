"""`make run`: build, sign, verify and audit the example skill with the real CLI.

Every step is a real `palyra` command, printed before it runs, so this doubles as a
copy-paste walkthrough. State (a demo publisher key, the trust store) lives in .palyra-demo/.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import wasmtime

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "echo-http"
DEMO = ROOT / ".palyra-demo"
BUILD = ROOT / "build" / "examples" / "echo-http"


def palyra(*args: str, check: bool = True) -> int:
    command = [str(Path(sys.executable).parent / "palyra"), "--state-root", str(DEMO), *args]
    shown = " ".join(shlex.quote(part) for part in ["palyra", *command[3:]])
    print(f"\n$ {shown}", flush=True)
    code = subprocess.run(command, check=False).returncode
    if check and code != 0:
        sys.exit(code)
    return code


def main() -> None:
    BUILD.mkdir(parents=True, exist_ok=True)
    DEMO.mkdir(parents=True, exist_ok=True)
    module = BUILD / "module.wasm"
    module.write_bytes(wasmtime.wat2wasm((EXAMPLE / "module.wat").read_text()))
    print(f"compiled {EXAMPLE.relative_to(ROOT)}/module.wat → {module.relative_to(ROOT)}")
    key = DEMO / "publisher.key"
    if not key.exists():
        palyra("keys", "generate", "--out", str(key))
    artifact = BUILD / "acme.echo_http-1.0.0.palyra-skill"
    palyra(
        "skills", "package", "build",
        "--manifest", str(EXAMPLE / "skill.toml"),
        "--module", str(module),
        "--asset", str(EXAMPLE / "prompt.txt"),
        "--sbom", str(EXAMPLE / "sbom.cdx.json"),
        "--provenance", str(EXAMPLE / "provenance.json"),
        "--signing-key-file", str(key),
        "--output", str(artifact),
    )  # fmt: skip
    palyra("skills", "package", "inspect", str(artifact))
    palyra("skills", "package", "verify", "--artifact", str(artifact), "--allow-tofu")
    palyra("trust", "list")
    palyra("skills", "audit", "--artifact", str(artifact))
    # The same module in the sandbox: fresh store, fuel, memory and wall-clock limits.
    palyra("plugin", "run", "--wat", str(EXAMPLE / "module.wat"), "--allow-http", "api.example.com")
    print("\nThe daemon and console arrive in later issues; this run shows the artifact contract")
    print(f"and the sandbox end to end. State: {DEMO.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
