"""``palyra keys``: publisher signing keys."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from palyra.cli.output import console, print_json
from palyra.errors import IoFailure, UsageError
from palyra.skills.keys import SigningKey

app = typer.Typer(help="Create publisher signing keys.", no_args_is_help=True)


def write_secret_file(path: Path, data: bytes, *, force: bool) -> None:
    """Create ``path`` with mode 0600 from the first byte (never world-readable, even briefly)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise UsageError(f"{path} already exists (pass --force to overwrite)") from None
    except OSError as exc:
        raise IoFailure(f"cannot create {path}: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


@app.command("generate")
def generate(
    out: Annotated[Path, typer.Option("--out", help="Where to write the seed (hex, mode 0600).")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Generate an Ed25519 signing key; prints its public key and key id."""
    key = SigningKey.generate()
    write_secret_file(out, (key.seed.hex() + "\n").encode("ascii"), force=force)
    if json_output:
        print_json({"path": str(out), "public_key_hex": key.public_key_hex, "key_id": key.key_id})
        return
    out_console = console()
    out_console.print(f"wrote signing key {out} (mode 0600; keep it secret)")
    out_console.print(f"public_key_hex={key.public_key_hex}")
    out_console.print(f"key_id={key.key_id}")
