"""Fixtures of the forensics tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from forensics.calibration import TAIL_MIN_SUBJECTS


@pytest.fixture(scope="session")
def distractor_photos(data_dir) -> list[tuple[Path, str]]:
    """(photo, subject id) of LFW people with a single photo, enough of them that a gallery holding
    them is large enough for a search to measure its own FPIR (`TAIL_MIN_SUBJECTS`)."""
    root = data_dir / "lfw" / "deepfunneled_250"
    people = sorted(p for p in root.iterdir() if p.is_dir() and len(list(p.glob("*.jpg"))) == 1)
    return [(next(p.glob("*.jpg")), f"lfw_{p.name}") for p in people[:TAIL_MIN_SUBJECTS]]
