"""gallery/transaction.py: the read and write transactions shared by the repository and the audit
log, on a gallery (one transaction per call) or in the caller's session."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from gallery import EnrollmentError, GalleryRepository, audit, read_transaction, verify_chain, write_transaction
from gallery.transaction import chunks


def test_a_write_and_its_audit_event_commit_together(gal, repo):
    with write_transaction(gal) as s:
        GalleryRepository(s).upsert_subject("S-1")
        audit.append_event(s, "op", "upsert", "S-1")
    assert repo.get_subject("S-1") is not None
    assert [e.target for e in audit.iter_events(gal)] == ["S-1"]


def test_a_write_and_its_audit_event_roll_back_together(gal, repo):
    with pytest.raises(RuntimeError):
        with write_transaction(gal) as s:
            GalleryRepository(s).upsert_subject("S-1")
            audit.append_event(s, "op", "upsert", "S-1")
            raise RuntimeError("the caller failed after both")
    assert repo.get_subject("S-1") is None
    assert verify_chain(gal).n_events == 0


def test_a_refused_call_in_the_callers_transaction_undoes_only_itself(gal, repo):
    with write_transaction(gal) as s:
        r = GalleryRepository(s)
        r.upsert_subject("KEEP")
        with pytest.raises(EnrollmentError, match="non-empty"):
            r.upsert_subject("")  # its SAVEPOINT is rolled back, the transaction goes on
        audit.append_event(s, "op", "upsert", "KEEP")
    assert [x.external_id for x in repo.list_subjects()] == ["KEEP"]
    assert verify_chain(gal).ok


def test_write_transaction_takes_the_write_lock_up_front(gal, repo):
    """A second writer waits for the first from its start (BEGIN IMMEDIATE), even before the
    first has written anything: no deferred read->write upgrade that could fail with SQLITE_BUSY."""
    order: list[str] = []
    entered = threading.Event()

    def second():
        entered.wait()
        repo.upsert_subject("B")
        order.append("second committed")

    t = threading.Thread(target=second)
    t.start()
    with write_transaction(gal) as s:
        entered.set()
        t.join(timeout=0.5)  # the second writer cannot get in meanwhile
        order.append("first committing")
        GalleryRepository(s).upsert_subject("A")
    t.join()
    assert order == ["first committing", "second committed"]
    assert [x.external_id for x in repo.list_subjects()] == ["A", "B"]


def test_reads_in_the_callers_session_see_its_uncommitted_writes(gal):
    with write_transaction(gal) as s:
        GalleryRepository(s).upsert_subject("NEW")
        with read_transaction(s) as same:
            assert same is s
            assert GalleryRepository(s).count_subjects() == 1
        assert gal.repository().count_subjects() == 0  # others see it after the commit only
    assert gal.repository().count_subjects() == 1


def test_sources_other_than_a_gallery_or_session_are_refused(gal):
    with pytest.raises(TypeError, match="GalleryRepository needs a Gallery or a Session"):
        GalleryRepository(gal.path)
    with pytest.raises(TypeError, match="append_event needs a Gallery or a Session"):
        audit.append_event("gallery.db", "op", "x")


def test_chunks():
    assert [list(c) for c in chunks(list(range(5)), 2)] == [[0, 1], [2, 3], [4]]
    assert list(chunks(np.arange(0), 3)) == []


def test_a_write_to_a_read_only_sqlite_gallery_is_a_clear_error_naming_it(sqlite_gal):
    """SQLite answering SQLITE_READONLY (here: PRAGMA query_only, as a read-only file or disk
    would) is a GalleryReadOnlyError naming the file; reads still work and nothing is written."""
    from sqlalchemy import event

    from gallery import GalleryReadOnlyError

    before = GalleryRepository(sqlite_gal).count_subjects()
    sqlite_gal.engine.dispose()
    event.listen(sqlite_gal.engine, "connect", lambda con, _: con.execute("PRAGMA query_only = ON"))
    with pytest.raises(GalleryReadOnlyError, match=r"/gallery\.db: the gallery cannot be written \(it is read-only"):
        audit.append_event(sqlite_gal, "officer", "note", "x")
    assert GalleryRepository(sqlite_gal).count_subjects() == before
