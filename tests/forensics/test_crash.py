"""Crash safety: the real `forensics enroll` (two workers) killed with SIGKILL at random moments
(seeded); after each kill no worker is left and every committed image has its audit event; a
last run completes the gallery and repairs its index (benchmarks/reliability.py does it 20 times)."""

from __future__ import annotations

import pytest

from benchmarks.reliability import crash_enroll, lfw_manifest


@pytest.mark.slow
def test_enrollment_survives_kills_at_random_moments(tmp_path, data_dir):
    run = crash_enroll(lfw_manifest(data_dir, 320, tmp_path / "m.csv"), tmp_path / "g.db", kills=5, seed=7)
    assert len(run.kills) == 5 and all(k.running for k in run.kills), run.kills  # killed, not finished
    assert all(k.workers_left == 0 for k in run.kills), run.kills
    assert all(k.verify_ok for k in run.kills), run.kills  # every committed image audited
    assert any(0 < k.images for k in run.kills), run.kills  # some kills landed after commits
    assert run.final_exit in (0, 1) and run.final_images == run.expected > 300, run
    assert run.final_verify_ok and run.final_check_ok and run.final_temporaries == 0, run


def test_a_rerun_with_nothing_new_repairs_a_stale_index(tmp_path, small_gallery_dir):
    """A run killed after its last commit but before its index save leaves a stale index: the
    rerun (every file a duplicate) brings it up to date."""
    import numpy as np
    from typer.testing import CliRunner

    from forensics.cli import app
    from gallery.db import open_gallery
    from gallery.index import VectorIndex

    runner = CliRunner()
    db = tmp_path / "g.db"
    assert runner.invoke(app, ["enroll", str(small_gallery_dir), "--db", str(db)]).exit_code == 0
    g = open_gallery(db, create=False)
    emb = g.repository().gallery_embedder()
    stale = VectorIndex.build(np.arange(1), np.ones((1, emb.dim), np.float32), emb.key)
    stale.save(db.with_suffix(".faiss"))  # as an earlier state of the gallery left it
    g.close()
    assert runner.invoke(app, ["gallery", "check", "--db", str(db)]).exit_code == 1
    res = runner.invoke(app, ["enroll", str(small_gallery_dir), "--db", str(db)])
    assert res.exit_code == 0 and "enrolled 0, duplicates skipped 10" in res.output, res.output
    assert runner.invoke(app, ["gallery", "check", "--db", str(db)]).exit_code == 0
