"""A component probe on the raw bindings (no SDK): runs the host calls listed in its input and
reports each outcome, so tests see exactly what the component ABI returns.

Input: {"ops": [{"op": "<name>", ...}, ...]} where op is a host function (log, info,
http_fetch, secret_get, storage_get/put/delete/list, channel_send) or a hostile action (loop,
hog, print, env, open, socket, raise, fail). Output: a JSON array with one entry per op:
{"ok": value} or {"err": "<error-code>", "message": "..."}.

Tool "fail" ends the call with a tool-error built from the *last* element of "ops"
({"kind", "message", "details"}); any elements before it are run first like the probe's ops, and
their outcomes become the error's details when the last element gives none.
"""

import json
import os

import wit_world
from componentize_py_types import Err
from wit_world.imports import host, types


def _do(op):
    name = op["op"]
    if name == "log":
        host.log(host.LogLevel[op.get("level", "info").upper()], op["message"])
        return None
    if name == "info":
        info = host.info()
        return {
            "skill_id": info.skill_id,
            "tool_id": info.tool_id,
            "tool": info.tool,
            "remaining_ms": info.remaining_ms,
        }
    if name == "http_fetch":
        request = host.HttpRequest(
            method=op.get("method", "GET"),
            url=op["url"],
            headers=[host.Header(k, v) for k, v in op.get("headers", {}).items()],
            secret_headers=[
                host.SecretHeader(k, s["secret"], s.get("prefix", ""), s.get("suffix", ""))
                for k, s in op.get("secret_headers", {}).items()
            ],
            body=op.get("body", "").encode() * op.get("repeat", 1),
        )
        response = host.http_fetch(request)
        return {
            "status": response.status,
            "body": response.body.decode("utf-8", "replace"),
            "headers": [[h.name, h.value] for h in response.headers],
        }
    if name == "secret_get":
        return host.secret_get(op["scope"], op["key"]).decode("utf-8", "replace")
    if name == "storage_get":
        return host.storage_get(op["key"]).decode("utf-8", "replace")
    if name == "storage_put":
        value = op["value"].encode() * op.get("repeat", 1)
        host.storage_put(op["key"], value)
        return None
    if name == "storage_delete":
        host.storage_delete(op["key"])
        return None
    if name == "storage_list":
        return host.storage_list(op.get("prefix", ""))
    if name == "channel_send":
        host.channel_send(op["channel"], op["message"] * op.get("repeat", 1))
        return None
    if name == "loop":
        while True:
            pass
    if name == "hog":
        hoard = []
        while True:
            hoard.append(bytearray(1 << 20))
    if name == "print":
        chunk = "x" * op.get("chunk", 1 << 20)
        for _ in range(op.get("times", 100)):
            print(chunk)
        return "printed"
    if name == "env":
        return dict(os.environ)
    if name == "open":
        with open(op["path"], "rb") as handle:
            return handle.read(64).decode("latin-1")
    if name == "socket":
        import socket

        sock = socket.create_connection((op["host"], op["port"]), timeout=2)
        sock.sendall(b"hello")
        return "connected"
    if name == "echo":
        return op.get("value")
    raise ValueError(f"unknown op {name}")


def _outcome(op):
    try:
        return {"ok": _do(op)}
    except Err as err:
        value = err.value
        return {"err": value.code.name.lower().replace("_", "-"), "message": value.message}
    except OSError as exc:
        return {"oserror": type(exc).__name__, "message": str(exc)}


class WitWorld(wit_world.WitWorld):
    def call(self, tool: str, input: str) -> str:
        try:
            ops = json.loads(input)["ops"]
            if tool == "fail":
                *before, failure = ops
                results = [_outcome(op) for op in before]
                details = failure.get("details")
                if details is None and before:
                    details = json.dumps(results)
                raise Err(
                    types.ToolError(types.ErrorKind[failure["kind"]], failure["message"], details)
                )
            return json.dumps([_outcome(op) for op in ops])
        except Err:
            raise
        except MemoryError:
            raise Err(
                types.ToolError(types.ErrorKind.MEMORY_LIMIT, "out of memory", None)
            ) from None
        except Exception as exc:  # an escaping exception would abort the guest
            message = f"{type(exc).__name__}: {exc}"
            raise Err(types.ToolError(types.ErrorKind.TOOL_ERROR, message, None)) from None

    def describe(self) -> str:
        return json.dumps([{"name": "probe"}, {"name": "fail"}])
