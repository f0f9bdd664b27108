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
