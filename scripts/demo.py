"""`make run`: build, sign and install the demo skills, then start the daemon.

Every step is a real `palyra` command, printed before it runs, so this doubles as a
copy-paste walkthrough. The demo skills are the Python examples in examples/python/ (built
with componentize-py; the first run takes a minute or two, later runs hit the build and code
caches) and the reference example examples/echo-http/. Each is installed (verified, trusted
on first use, audited), a few tools are called through the runner (each call leaves a receipt
in the journal), and finally `palyra daemon run` serves the HTTP API until Ctrl-C. State (a
demo publisher key, the database, trust store, vault, skill storage) lives in .palyra-demo/;
`make run` again reuses it (installs of identical artifacts are no-ops).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import wasmtime

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".palyra-demo"
BUILD = ROOT / "build" / "examples"
PYTHON_EXAMPLES = ROOT / "examples" / "python"
ECHO = ROOT / "examples" / "echo-http"

# What the demo calls once each skill is verified (tool, input). http_json reaches a real
# host (api.weather.example), so it is built, signed and audited but not called offline.
DEMO_CALLS: dict[str, list[tuple[str, dict[str, object]]]] = {
    "notes": [
        ("add", {"title": "Try Palyra", "body": "Signed, audited, sandboxed.", "tags": ["demo"]}),
        ("list_notes", {"tag": "demo"}),
    ],
    "report": [
        (
            "add_entry",
            {
                "componentId": "add-expense",
                "values": {"category": "software", "amount": 12.5, "description": "demo"},
            },
        ),
    ],
    "http_json": [],
}


def palyra(*args: str, check: bool = True) -> int:
    command = [str(Path(sys.executable).parent / "palyra"), "--state-root", str(DEMO), *args]
    shown = " ".join(shlex.quote(part) for part in ["palyra", *command[3:]])
    print(f"\n$ {shown}", flush=True)
    env = {
        **os.environ,
        "PALYRA_BUILD_CACHE": str(ROOT / "build" / "cache" / "builds"),
        "PALYRA_CODE_CACHE": str(ROOT / "build" / "cache" / "code"),
    }
    code = subprocess.run(command, check=False, env=env).returncode
    if check and code != 0:
        sys.exit(code)
    return code


def python_skill(name: str, key: Path) -> Path:
    source = PYTHON_EXAMPLES / name
    out = BUILD / name
    module = out / "skill.wasm"
    palyra("skills", "build", str(source), "-o", str(module))
    artifact = out / f"acme.{name}.palyra-skill"
    palyra(
        "skills", "package", "build",
        "--manifest", str(source / "skill.toml"),
        "--module", str(module),
        "--signing-key-file", str(key),
        "--output", str(artifact),
    )  # fmt: skip
    palyra("skills", "install", str(artifact), "--allow-tofu")
    for tool, value in DEMO_CALLS.get(name, []):
        palyra("skills", "run", f"acme.{name}", tool, "--input", json.dumps(value))
    return artifact


def echo_http(key: Path) -> Path:
    """The reference implementation's example: a core module from WAT, packaged with its own
    SBOM and provenance."""
    out = BUILD / "echo-http"
    out.mkdir(parents=True, exist_ok=True)
    module = out / "module.wasm"
    module.write_bytes(wasmtime.wat2wasm((ECHO / "module.wat").read_text()))
    print(f"\ncompiled {ECHO.relative_to(ROOT)}/module.wat → {module.relative_to(ROOT)}")
    artifact = out / "acme.echo_http-1.0.0.palyra-skill"
    palyra(
        "skills", "package", "build",
        "--manifest", str(ECHO / "skill.toml"),
        "--module", str(module),
        "--asset", str(ECHO / "prompt.txt"),
        "--sbom", str(ECHO / "sbom.cdx.json"),
        "--provenance", str(ECHO / "provenance.json"),
        "--signing-key-file", str(key),
        "--output", str(artifact),
    )  # fmt: skip
    palyra("skills", "package", "inspect", str(artifact))
    palyra("skills", "install", str(artifact), "--allow-tofu")
    return artifact


def main() -> None:
    DEMO.mkdir(parents=True, exist_ok=True)
    key = DEMO / "publisher.key"
    if not key.exists():
        palyra("keys", "generate", "--out", str(key))
    artifacts = [python_skill(name, key) for name in sorted(DEMO_CALLS)]
    artifacts.append(echo_http(key))
    palyra("skills", "list")
    palyra("journal", "verify")
    print("\nDemo skills built, signed, verified, audited and installed:")
    for artifact in artifacts:
        print(f"  {artifact.relative_to(ROOT)}")
    port = os.environ.get("PALYRA_DEMO_PORT", "7142")
    command = [str(Path(sys.executable).parent / "palyra"), "--state-root", str(DEMO)]
    token = subprocess.run(
        [*command, "daemon", "token"], check=True, capture_output=True, text=True
    ).stdout.strip()
    print(f"\nStarting the daemon (Ctrl-C stops it). API token: {token}")
    print(f"Console: http://127.0.0.1:{port}/  (sign in with the token above)")
    print(f"Try:  PALYRA_STATE_ROOT={DEMO.relative_to(ROOT)} .venv/bin/palyra skills list")
    print(f"      curl -H 'Authorization: Bearer {token}' http://127.0.0.1:{port}/api/v1/skills")
    sys.stdout.flush()
    env = {**os.environ, "PALYRA_CODE_CACHE": str(ROOT / "build" / "cache" / "code")}
    os.execve(command[0], [*command, "daemon", "run", "--port", port], env)  # noqa: S606


if __name__ == "__main__":
    main()
