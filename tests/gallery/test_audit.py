"""gallery/audit.py: the hash-chained audit log: appending, verification, tamper detection, export."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from gallery import GalleryRepository, open_gallery
from gallery.audit import (
    GENESIS,
    append_event,
    compute_hash,
    event_payload,
    export_events,
    iter_events,
    verify_chain,
)
from gallery.errors import AuditError

N = 6


@pytest.fixture
def gal(gallery_at_head):
    g = open_gallery(gallery_at_head)
    for i in range(1, N + 1):
        append_event(
            g,
            actor=f"officer{i % 2}",
            action=["enroll", "search", "export"][i % 3],
            target=f"case-{i}",
            details={"i": i, "k": np.int64(10), "nested": {"b": 1, "a": [1.5, None]}},
            input_hashes=[f"{i:064x}"],
            outcome="ok",
        )
    yield g
    g.close()


@pytest.fixture
def tamper(raw_sql):
    """``tamper(g, *statements)``: modify audit_events behind the application's back, past its
    append-only triggers (as someone with the file, or a superuser of the server, would)."""
    return lambda g, *statements: raw_sql(g, *statements, bypass_triggers=True)


def problems(g):
    r = verify_chain(g)
    assert not r.ok and not bool(r)
    return sorted((p.event_id, p.what) for p in r.problems)


def test_chain_is_linked_and_verifies(gal):
    events = list(iter_events(gal))
    assert [e.id for e in events] == list(range(1, N + 1))
    assert events[0].prev_hash == GENESIS
    for a, b in zip(events, events[1:]):
        assert b.prev_hash == a.hash
    e = events[2]
    assert e.details == {"i": 3, "k": 10, "nested": {"a": [1.5, None], "b": 1}}
    assert e.hash == compute_hash(
        e.prev_hash,
        event_payload(e.ts, e.actor, e.action, e.target, e.details, e.input_hashes, e.outcome),
    )
    assert e.ts.endswith("Z") and len(e.ts) == 27
    r = verify_chain(gal)
    assert r.ok and r.n_events == N and r.problems == [] and r.head_hash == events[-1].hash
    assert "intact" in r.summary()


def test_empty_log_verifies():
    with open_gallery(":memory:") as g:
        r = verify_chain(g)
        assert r.ok and r.n_events == 0 and r.head_hash == GENESIS


def test_update_and_delete_refused_by_database(gal, raw_sql, driver_errors):
    with pytest.raises(driver_errors, match="append-only"):
        raw_sql(gal, "UPDATE audit_events SET actor = 'mallory' WHERE id = 2")
    with pytest.raises(driver_errors, match="append-only"):
        raw_sql(gal, "DELETE FROM audit_events WHERE id = 2")
    prev = next(e.prev_hash for e in iter_events(gal) if e.id == 3)
    with pytest.raises(driver_errors, match="(?i)unique"):  # a fork off an existing event
        raw_sql(gal, f"INSERT INTO audit_events VALUES (99, 't', 'a', 'b', NULL, '{{}}', '[]', 'ok', '{prev}', "
                     f"'{'f' * 64}')")
    assert verify_chain(gal).ok


def test_detects_edited_event(gal, tamper):
    tamper(gal, "UPDATE audit_events SET outcome = 'match found' WHERE id = 3")
    assert problems(gal) == [(3, "edited")]


def test_detects_edited_details(gal, tamper):
    tamper(gal, """UPDATE audit_events SET details = '{"i":4,"k":11,"nested":{"a":[1.5,null],"b":1}}'
                   WHERE id = 4""")
    assert problems(gal) == [(4, "edited")]


def test_detects_edited_and_rehashed_event(gal, tamper):
    ev = next(e for e in iter_events(gal) if e.id == 2)
    new_hash = compute_hash(
        ev.prev_hash,
        event_payload(ev.ts, "mallory", ev.action, ev.target, ev.details, ev.input_hashes,
                      ev.outcome),
    )
    tamper(gal, f"UPDATE audit_events SET actor = 'mallory', hash = '{new_hash}' WHERE id = 2")
    assert problems(gal) == [(2, "edited")]


def test_detects_rehashed_last_event(gal, tamper):
    ev = list(iter_events(gal))[-1]
    new_hash = compute_hash(
        ev.prev_hash,
        event_payload(ev.ts, ev.actor, ev.action, "other", ev.details, ev.input_hashes, ev.outcome),
    )
    tamper(gal, f"UPDATE audit_events SET target = 'other', hash = '{new_hash}' WHERE id = {N}")
    assert problems(gal) == [(N, "edited")]


def test_detects_deleted_event(gal, tamper):
    tamper(gal, "DELETE FROM audit_events WHERE id = 3")
    r = verify_chain(gal)
    assert [(p.event_id, p.what) for p in r.problems] == [(3, "deleted")]
    assert "#3" in r.problems[0].detail


def test_detects_deleted_first_and_last_events(gal, tamper):
    tamper(gal, "DELETE FROM audit_events WHERE id = 1", f"DELETE FROM audit_events WHERE id = {N}")
    assert problems(gal) == [(1, "deleted"), (N, "deleted")]


def test_detects_deleted_and_renumbered(gal, tamper):
    tamper(gal, "DELETE FROM audit_events WHERE id = 3",
           *[f"UPDATE audit_events SET id = {i - 1} WHERE id = {i}" for i in range(4, N + 1)])
    found = problems(gal)
    assert found and all(w in ("deleted", "edited") for _, w in found)
    assert (2, "edited") in found  # the break is located right after event #2


def test_detects_reordered_events(gal, tamper):
    tamper(
        gal,
        "UPDATE audit_events SET id = -3 WHERE id = 3",
        "UPDATE audit_events SET id = 3 WHERE id = 4",
        "UPDATE audit_events SET id = 4 WHERE id = -3",
    )
    assert problems(gal) == [(3, "reordered"), (4, "reordered")]


def test_detects_event_moved_to_the_end(gal, tamper):
    tamper(gal, "UPDATE audit_events SET id = 99 WHERE id = 2")
    assert problems(gal) == [(99, "reordered")]


def test_detects_event_appended_without_head(gal, tamper):
    last = list(iter_events(gal))[-1]
    payload = event_payload("2030-01-01T00:00:00.000000Z", "x", "y", None, {}, [], "ok")
    h = compute_hash(last.hash, payload)
    tamper(gal, f"""INSERT INTO audit_events VALUES ({N + 1}, '2030-01-01T00:00:00.000000Z', 'x',
                   'y', NULL, '{{}}', '[]', 'ok', '{last.hash}', '{h}')""")
    assert problems(gal) == [(N + 1, "inserted")]


def test_append_joins_caller_transaction(gal):
    with pytest.raises(RuntimeError):
        with gal.session() as s:
            append_event(s, "op", "enroll", "S-1", {"n": 1})
            raise RuntimeError("enrollment failed")
    assert verify_chain(gal).n_events == N
    with gal.session() as s:
        rec = append_event(s, "op", "enroll", "S-1", {"n": 1})
        GalleryRepository(s).upsert_subject("S-1")
    assert rec.id == N + 1
    r = verify_chain(gal)
    assert r.ok and r.n_events == N + 1
    with pytest.raises(AuditError):
        append_event(gal, "op", "x", details=["not", "a", "dict"])  # type: ignore[arg-type]


def test_export_jsonl_and_csv(gal, tmp_path):
    out = tmp_path / "audit.jsonl"
    assert export_events(gal, "jsonl", out) == N
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["id"] for x in lines] == list(range(1, N + 1))
    prev = GENESIS
    for x in lines:  # the export alone is enough to re-verify the chain
        assert x["prev_hash"] == prev
        payload = event_payload(x["ts"], x["actor"], x["action"], x["target"], x["details"],
                                x["input_hashes"], x["outcome"])
        assert compute_hash(prev, payload) == x["hash"]
        prev = x["hash"]

    buf = io.StringIO()
    assert export_events(gal, "csv", buf) == N
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert len(rows) == N and rows[0]["prev_hash"] == GENESIS
    assert json.loads(rows[1]["details"])["i"] == 2
    assert json.loads(rows[1]["input_hashes"]) == [f"{2:064x}"]
    assert export_events(gal, "jsonl").count("\n") == N
    with pytest.raises(AuditError):
        export_events(gal, "xml", buf)


def test_concurrent_appends_keep_one_chain(gal):
    import threading

    errors = []

    def worker(t):
        try:
            for k in range(10):
                append_event(gal, f"thread{t}", "search", details={"k": k})
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    r = verify_chain(gal)
    assert r.ok and r.n_events == N + 40
