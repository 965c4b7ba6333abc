"""Two daemons, two processes, two ports, one PostgreSQL: they behave as one system.

Each daemon has its own state root (its own token, vault and compiled-code cache) and shares
everything else through the database: installed skills and their artifacts, statuses, the
trust store, approvals and the journal.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import daemon_fixtures as df
from daemon_server import daemon_process
from palyra.daemon.auth import TOKEN_FILE, load_or_create_token
from palyra.daemon.client import DaemonClient, RemoteError
from pg_server import PgServer

ECHO = {"text": "across daemons"}
WAIT_S = 60.0


@dataclass
class Pair:
    a: DaemonClient
    b: DaemonClient
    roots: tuple[Path, Path]
    database_url: str


@pytest.fixture
def pair(postgres: PgServer, tmp_path: Path) -> Iterator[Pair]:
    url = postgres.fresh_database()
    env = {"PALYRA_DATABASE_URL": url}
    root_a, root_b = tmp_path / "daemon-a", tmp_path / "daemon-b"
    # One token for both, as behind a load balancer (docs/deployment.md): the same file in
    # each state root.
    token = secrets.token_urlsafe(32)
    for root in (root_a, root_b):
        (root / "daemon").mkdir(parents=True, mode=0o700)
        (root / "daemon" / TOKEN_FILE).write_text(token + "\n")
        (root / "daemon" / TOKEN_FILE).chmod(0o600)
    with (
        daemon_process(root_a, env=env) as (_pa, url_a),
        daemon_process(root_b, env=env) as (_pb, url_b),
    ):
        assert url_a != url_b
        assert load_or_create_token(root_a) == load_or_create_token(root_b) == token
        a, b = DaemonClient(url_a, token), DaemonClient(url_b, token)
        try:
            yield Pair(a, b, (root_a, root_b), url)
        finally:
            a.close()
            b.close()


def install(client: DaemonClient, **kwargs: Any) -> dict[str, Any]:
    return client.install_artifact(df.artifact(**kwargs), allow_tofu=True)


def echo(client: DaemonClient) -> dict[str, Any]:
    return client.run(df.SKILL_ID, "echo", ECHO)


def refused(call: Any) -> RemoteError:
    with pytest.raises(RemoteError) as caught:
        call()
    return caught.value


def test_install_on_a_runs_on_b(pair: Pair) -> None:
    install(pair.a)
    receipt = echo(pair.b)
    assert receipt["output"] == ECHO
    listed = pair.b.list_skills()["skills"]
    assert [s["skill_id"] for s in listed] == [df.SKILL_ID]
    # The artifact lives in the database, not in either daemon's state root.
    for root in pair.roots:
        assert not (root / "skills" / df.SKILL_ID).exists()


def test_a_key_pinned_through_a_binds_b(pair: Pair) -> None:
    install(pair.a)
    pair.a.remove(df.SKILL_ID)  # nothing installed any more; the pin stays in the trust store
    error = refused(lambda: install(pair.b, key=df.OTHER_KEY))
    assert error.kind == "tofu_key_mismatch"


def test_quarantine_on_b_refuses_the_next_call_on_a(pair: Pair) -> None:
    install(pair.a)
    assert echo(pair.a)["output"] == ECHO  # A has the skill loaded and compiled
    pair.b.quarantine(df.SKILL_ID, reason="incident 42")
    error = refused(lambda: echo(pair.a))
    assert error.kind == "skill_not_active"
    pair.a.enable(df.SKILL_ID, reason="resolved")
    assert echo(pair.b)["output"] == ECHO


def test_remove_on_a_is_seen_by_b(pair: Pair) -> None:
    install(pair.b)
    assert echo(pair.a)["output"] == ECHO
    pair.a.remove(df.SKILL_ID)
    assert refused(lambda: echo(pair.b)).kind == "not_found"
    install(pair.b)  # the same bytes again: stored afresh, runnable on both
    assert echo(pair.a)["output"] == ECHO


def test_concurrent_calls_on_both_keep_one_valid_journal_chain(pair: Pair) -> None:
    install(pair.a)
    failures: list[BaseException] = []
    calls_each = 30

    def caller(client: DaemonClient) -> None:
        try:
            for _ in range(calls_each):
                assert echo(client)["output"] == ECHO
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=caller, args=(c,)) for c in (pair.a, pair.b) * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    for client in (pair.a, pair.b):
        report = client.verify_journal()
        assert report["ok"], report
    receipts = pair.b.journal(limit=1000, kind="tool.call")["events"]
    assert len(receipts) == 4 * calls_each
    seqs = [e["seq"] for e in pair.a.journal(limit=1000)["events"]]
    assert seqs == list(range(1, len(seqs) + 1))


def test_approve_on_a_a_call_waiting_on_b(pair: Pair) -> None:
    install(pair.a)
    outcome: list[dict[str, Any] | BaseException] = []

    def waiting_call() -> None:
        try:
            outcome.append(pair.b.run(df.SKILL_ID, "guarded", {"text": "needs a human"}))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=waiting_call)
    thread.start()
    pending: list[dict[str, Any]] = []
    deadline = time.monotonic() + WAIT_S
    while not pending and time.monotonic() < deadline:
        pending = pair.a.list_approvals()["approvals"]
        time.sleep(0.1)
    assert len(pending) == 1, "the call on B never showed up as pending on A"
    assert pending[0]["tool_id"] == "acme.guarded"
    pair.a.decide_approval(pending[0]["approval_id"], approve=True, reason="looks fine")
    thread.join(WAIT_S)
    assert not thread.is_alive()
    result = outcome[0]
    assert isinstance(result, dict), result
    assert result["output"] == {"text": "needs a human"}
    decided = pair.b.list_approvals(state=None)["approvals"]
    assert [(d["state"], d["decided_by"]) for d in decided] == [("approved", "api")]
