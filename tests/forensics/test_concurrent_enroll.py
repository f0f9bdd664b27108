"""Two `forensics enroll` processes at once on overlapping photo sets, into a SQLite file and into
a PostgreSQL database: the gallery holds exactly their union, each image once, and its audit log
verifies."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from gallery import open_gallery

ROOT = Path(__file__).resolve().parents[2]
CLI = "import sys; from forensics.cli import app; sys.argv[0] = 'forensics'; app()"


def _photo_set(small_gallery_dir: Path, people: list[str], dest: Path) -> Path:
    """A folder per person (subject = folder name) for ``people``, copied from the small gallery."""
    for person in people:
        shutil.copytree(small_gallery_dir / person, dest / person)
    return dest


def _cli(*args) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", CLI, *map(str, args)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_two_concurrent_enrolls_of_overlapping_sets_give_exactly_their_union(gallery_url, small_gallery_dir,
                                                                             lfw_people, tmp_path):
    first = _photo_set(small_gallery_dir, lfw_people[:4], tmp_path / "first")
    second = _photo_set(small_gallery_dir, lfw_people[1:], tmp_path / "second")
    runs = [_cli("enroll", folder, "--db", gallery_url, "--operator", f"clerk-{i}")
            for i, folder in enumerate((first, second))]
    outputs = [p.communicate(timeout=600)[0] for p in runs]
    assert [p.returncode for p in runs] == [0, 0], outputs
    with open_gallery(gallery_url, create=False) as g:
        repo = g.repository()
        assert (repo.count_subjects(), repo.count_images(), repo.count_embeddings()) == (5, 10, 10)
    verify = subprocess.run([sys.executable, "-c", CLI, "audit", "verify", "--db", gallery_url],
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    assert verify.returncode == 0 and "intact" in verify.stdout, verify.stdout + verify.stderr
