"""One service operation in a process of its own, for ``test_daemon_crash`` to SIGKILL.

Usage: ``python daemon_crash_child.py <state_root> <operation> [args...]`` where operation is
``install <artifact>``, ``update <registry_dir> <skill_id>``, ``enable <skill_id> <version>``,
``remove <skill_id>``, ``secret <scope> <key> <value>`` (a vault write) or ``hook <event>``
(an operator's hook dispatch). Prints ``READY`` once the service is open (imports and recovery
are done, so the parent's random kill lands in the operation itself), then ``DONE <seconds>``
with the operation's own duration.

Only the service is imported: the artifacts were built by the parent, and the child's
start-up (dominated by importing ``palyra.daemon.service``) is paid before ``READY``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    state, operation, args = Path(argv[1]), argv[2], argv[3:]
    from palyra.daemon.service import Service

    service = Service.open(state)
    print("READY", flush=True)
    started = time.perf_counter()
    if operation == "install":
        service.install_file(Path(args[0]), allow_tofu=True)
    elif operation == "update":
        service.install_from_registry_dir(Path(args[0]), args[1], update=True)
    elif operation == "enable":
        service.enable(args[0], args[1], approve_capabilities=True)
    elif operation == "remove":
        service.remove(args[0])
    elif operation == "secret":
        service.set_secret(args[0], args[1], args[2].encode())
    elif operation == "hook":
        service.fire_hook(args[0], {})
    else:
        print(f"unknown operation {operation}", file=sys.stderr)
        return 2
    print(f"DONE {time.perf_counter() - started:.6f}", flush=True)
    service.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
