"""Several writers at once, on both backends: audit appends in separate processes keep one valid
chain; processes enrolling overlapping images give exactly their union; a duplicate image is
refused by a constraint; readers never wait for a writer, writers wait for each other."""

from __future__ import annotations

import hashlib
import multiprocessing
import threading
import time

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from gallery import FaceSpec, audit, open_gallery, write_transaction
from gallery.records import EnrollmentResult
from gallery.sealed import enroll_sealed
from gallery.verify import verify_gallery

DIM = 16
PROCESSES = 4
EVENTS_EACH = 30
#: Process i enrolls images START*i .. START*i + SPAN - 1: neighbours overlap by SPAN - START.
START, SPAN = 10, 25


def _sha(k: int) -> str:
    return hashlib.sha256(f"image {k}".encode()).hexdigest()


def _append_events(url: str, worker: int) -> int:
    g = open_gallery(url, create=False)
    try:
        for i in range(EVENTS_EACH):
            audit.append_event(g, f"examiner-{worker}", "search", target=f"{worker}/{i}")
        return EVENTS_EACH
    finally:
        g.close()


def _enroll_range(url: str, worker: int) -> int:
    """Enroll images START*worker .. +SPAN in batches of 5 (subject = image number mod 7);
    returns how many this process enrolled."""
    g = open_gallery(url, create=False)
    try:
        repo = g.repository()
        emb = repo.get_or_create_embedder("test-embedder", "1", DIM, "b" * 64)
        ks = list(range(START * worker, START * worker + SPAN))
        enrolled = 0
        for lo in range(0, len(ks), 5):
            batch = [({"external_id": f"S{k % 7}"}, {"sha256": _sha(k), "n_faces_detected": 1},
                      [FaceSpec(box=[1, 2, 30, 40], landmarks=None, det_score=0.9, chip_png=b"chip",
                                vector=np.random.default_rng(k).normal(size=DIM), embedder=emb)])
                     for k in ks[lo:lo + 5]]
            outcomes = enroll_sealed(g, batch, actor=f"clerk-{worker}")
            enrolled += sum(isinstance(o, EnrollmentResult) for o in outcomes)
        return enrolled
    finally:
        g.close()


def _in_processes(fn, url: str) -> list[int]:
    open_gallery(url).close()  # created once, before the writers start
    with multiprocessing.get_context("spawn").Pool(PROCESSES) as pool:
        return pool.starmap(fn, [(url, w) for w in range(PROCESSES)])


def test_concurrent_audit_appends_keep_one_valid_chain(gallery_url):
    assert sum(_in_processes(_append_events, gallery_url)) == PROCESSES * EVENTS_EACH
    with open_gallery(gallery_url, create=False) as g:
        result = audit.verify_chain(g)
        assert result.ok and result.n_events == PROCESSES * EVENTS_EACH
        targets = {e.target for e in audit.iter_events(g)}
    assert targets == {f"{w}/{i}" for w in range(PROCESSES) for i in range(EVENTS_EACH)}


def test_concurrent_enrollments_of_overlapping_images_give_their_union(gallery_url):
    per_process = _in_processes(_enroll_range, gallery_url)
    union = {_sha(k) for w in range(PROCESSES) for k in range(START * w, START * w + SPAN)}
    assert sum(per_process) == len(union)  # each image enrolled by exactly one process
    with open_gallery(gallery_url, create=False) as g:
        repo = g.repository()
        assert repo.count_images() == len(union) and repo.count_subjects() == 7
        assert repo.known_images(sorted(union)) == union
        assert verify_gallery(g).ok


def test_a_duplicate_image_is_refused_by_a_constraint(gallery_url):
    with open_gallery(gallery_url) as g:
        insert = text("INSERT INTO images (subject_id, sha256, n_faces, enrolled_at) "
                      "VALUES (:sid, :sha, 0, '2024-01-01T00:00:00.000000Z')")
        with g.engine.begin() as c:
            c.execute(text("INSERT INTO subjects (external_id, meta, created_at) "
                           "VALUES ('S1', '{}', '2024-01-01T00:00:00.000000Z')"))
            sid = c.execute(text("SELECT id FROM subjects")).scalar_one()
            c.execute(insert, {"sid": sid, "sha": _sha(1)})
        with pytest.raises(IntegrityError):
            with g.engine.begin() as c:
                c.execute(insert, {"sid": sid, "sha": _sha(1)})


def test_readers_do_not_wait_for_a_writer_and_writers_wait_for_each_other(gallery_url):
    with open_gallery(gallery_url) as g:
        audit.append_event(g, "clerk", "first")
        second = threading.Thread(target=audit.append_event, args=(g, "examiner", "second"))
        with write_transaction(g) as s:
            audit.append_event(s, "clerk", "enroll-in-progress")
            second.start()
            time.sleep(1.0)
            assert second.is_alive()  # the second writer waits for the first
            t0 = time.perf_counter()
            assert [e.action for e in audit.iter_events(g)] == ["first"]  # a reader: not kept waiting
            assert time.perf_counter() - t0 < 0.5
        second.join(timeout=30)
        assert not second.is_alive()
        assert [e.action for e in audit.iter_events(g)] == ["first", "enroll-in-progress", "second"]
        assert audit.verify_chain(g).ok
