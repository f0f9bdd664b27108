"""forensics/parallel.py: enrollment in worker processes writes the same gallery as enrollment in
one process."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from forensics.enroll import enroll
from forensics.manifest import items_from_paths
from forensics.errors import ForensicsError
from forensics.intake import PipelineFailure, Skipped, intake
from forensics.parallel import ParallelPipeline, PipelineSpec, choose_workers
from gallery.db import open_gallery


def test_intake_skips_known_and_repeated_files_only_when_asked(tmp_path, data_dir):
    src = data_dir / "lfw" / "deepfunneled_250" / "Al_Gore"
    a, b = sorted(src.glob("*.jpg"))[:2]
    paths = [a, tmp_path / "missing.jpg", b, a]
    slots, pending = intake(paths)  # evaluation: every file gets its answer
    assert [p.index for p in pending] == [0, 2, 3] and isinstance(slots[1], PipelineFailure)
    seen: set[str] = set()
    slots, pending = intake(paths, known=lambda shas: {shas[1]}, seen=seen)  # b is in the gallery
    assert [p.index for p in pending] == [0]
    assert isinstance(slots[2], Skipped) and isinstance(slots[3], Skipped)  # known, repeated
    assert "missing.jpg" in str(slots[1].error) and seen == {pending[0].sha256}


def test_choose_workers():
    assert choose_workers(0, 10_000) == 0 and choose_workers(3, 5) == 3
    assert choose_workers(None, 10) == 0  # small jobs stay in this process
    with pytest.raises(ForensicsError):
        choose_workers(-1, 10)


def _gallery_rows(db):
    repo = open_gallery(db, create=False).repository()
    info = repo.gallery_embedder()
    ids, vecs = repo.iter_embeddings(info)
    owners = repo.embedding_owners(ids.tolist())
    return [(owners[int(i)].external_id, owners[int(i)].image_sha256) for i in ids], vecs


@pytest.mark.slow
def test_workers_enroll_the_same_gallery_in_the_same_order(tmp_path, small_gallery_dir, pipeline):
    bad = small_gallery_dir / "Al_Gore" / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    first = sorted((small_gallery_dir / "Adrien_Brody").glob("*.jpg"))[0]
    shutil.copy(first, small_gallery_dir / "Adrien_Brody" / "copy.jpg")  # a duplicate in the run
    items = items_from_paths([small_gallery_dir])
    reports = {}
    for name, pipe in (("one", pipeline), ("two", ParallelPipeline(PipelineSpec(), workers=2).start())):
        with pipe:
            reports[name] = enroll(open_gallery(tmp_path / f"{name}.db"), pipe, items, batch_size=3)
    one, two = reports["one"], reports["two"]
    assert (one.enrolled, one.duplicates) == (two.enrolled, two.duplicates) == (10, 1)
    assert [str(p) for p, _ in one.failures] == [str(p) for p, _ in two.failures] == [str(bad)]
    assert "broken.jpg" in two.failures[0][1]
    rows1, v1 = _gallery_rows(tmp_path / "one.db")
    rows2, v2 = _gallery_rows(tmp_path / "two.db")
    assert rows1 == rows2  # same images, same subjects, same order
    np.testing.assert_allclose(v1, v2, atol=1e-5)  # one thread per worker: summation order differs


@pytest.mark.slow
def test_ctrl_c_keeps_what_was_committed_and_a_rerun_finishes(tmp_path, data_dir):
    """Ctrl-C in a terminal reaches the whole process group: the workers ignore it, the main
    process stops, keeps every committed batch, records the interruption; a rerun completes."""
    import csv
    import os
    import signal
    import subprocess
    import sys
    import time

    from gallery import audit

    from forensics.datasets import read_manifest

    rows = sorted(read_manifest(data_dir, "lfw"), key=lambda r: r["file"])[:480]
    manifest, db = tmp_path / "m.csv", tmp_path / "g.db"
    with open(manifest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "subject_id"])
        w.writerows([r["path"], r["identity"]] for r in rows)
    cmd = [sys.executable, "-m", "forensics.cli", "enroll", "--manifest", str(manifest), "--db", str(db),
           "--workers", "2"]
    # SIGINT back to its default in the child: a test run started in the background (`cmd &` without
    # job control, nohup) inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def n_images() -> int:
        if not db.is_file():
            return 0
        g = open_gallery(db, create=False)
        try:
            return g.repository().count_images()
        finally:
            g.close()

    def n_images_so_far() -> int:
        try:
            return n_images()
        except Exception:  # noqa: BLE001 - the gallery is still being created
            return 0

    deadline = time.time() + 120
    while n_images_so_far() < 64 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "enrollment ended before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    kept = n_images()
    assert 64 <= kept < len(rows)
    g = open_gallery(db, create=False)
    last = list(audit.iter_events(g))[-1]
    g.close()
    assert last.action == "enroll" and last.outcome == "interrupted" and last.details["enrolled"] == kept
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"enrolled {len(rows) - kept}, duplicates skipped {kept}" in again.stdout
    assert n_images() == len(rows)
