"""Fixtures of the gallery storage tests: an open gallery (on each backend in turn: a SQLite file,
then a PostgreSQL database), its repository, an embedder, helpers that enroll synthetic faces
(random vectors of :func:`dim` values), and SQL run behind the tool's back."""

from __future__ import annotations

import hashlib
from pathlib import Path

import sqlite3

import numpy as np
import psycopg
import pytest

from gallery import FaceSpec, GalleryRepository, open_gallery

DIM = 16


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _face(vec, emb, i: int = 0) -> FaceSpec:
    return FaceSpec(
        box=[10 + i, 20, 110, 140],
        landmarks=np.arange(10, dtype=float).reshape(5, 2),
        det_score=0.99,
        chip_png=b"\x89PNG fake chip %d" % i,
        vector=vec,
        embedder=emb,
    )


def _enroll(repo, emb, ext: str, n_images: int = 1, n_faces: int = 1, rng=None, **subj):
    """Enroll ``n_images`` images of subject ``ext`` with ``n_faces`` random faces each."""
    rng = rng or np.random.default_rng(abs(hash(ext)) % 2**32)
    return [
        repo.add_enrollment(
            {"external_id": ext, **subj},
            sha256=_sha(f"{ext}/{k}"),
            original_path=f"/data/{ext}_{k}.jpg",
            width=250,
            height=250,
            size_bytes=12345,
            source="test",
            faces=[_face(rng.normal(size=DIM), emb, i) for i in range(n_faces)],
        )
        for k in range(n_images)
    ]


def _fill(repo, emb, n_subjects: int = 30, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for i in range(n_subjects):
        _enroll(repo, emb, f"S{i:04d}", rng=rng, name=f"Person {i}", sex="MF"[i % 2],
                birth_year=1960 + i % 40)


@pytest.fixture
def dim() -> int:
    """The length of the synthetic vectors."""
    return DIM


@pytest.fixture
def sha():
    """``sha(text)``: the SHA-256 (hex) of a text, standing for an image's hash."""
    return _sha


@pytest.fixture
def face():
    """``face(vec, emb, i=0)``: a FaceSpec with a fake chip and box ``i`` pixels apart."""
    return _face


@pytest.fixture
def enroll():
    """``enroll(repo, emb, ext, n_images=1, n_faces=1, rng=None, **subject_fields)``: enroll
    random faces of subject ``ext`` (image hashes ``sha(f"{ext}/{k}")``); returns the results."""
    return _enroll


@pytest.fixture
def fill():
    """``fill(repo, emb, n_subjects=30, seed=0)``: enroll subjects S0000... with one face each."""
    return _fill


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "gallery.db"


def _opened(where):
    g = open_gallery(where)
    yield g
    g.close()


@pytest.fixture
def gal(gallery_at_head):
    """An open new gallery, on each backend in turn."""
    yield from _opened(gallery_at_head)


@pytest.fixture
def sqlite_gal(db_path: Path):
    """An open new gallery in a SQLite file (for what only a file has)."""
    yield from _opened(db_path)


def _raw_sql(gal, *statements: str, bypass_triggers: bool = False) -> None:
    """Run ``statements`` straight on the database, committed, as someone holding it would: with
    the sqlite3 module on the file (``bypass_triggers``: the append-only triggers dropped first),
    or with psycopg as the owner (``bypass_triggers``: triggers off for the session, as only a
    superuser may)."""
    if gal.location.is_postgres:
        url = gal.location.url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(url) as con:
            if bypass_triggers:
                con.execute("SET session_replication_role = replica")
            for st in statements:
                con.execute(st)
        return
    con = sqlite3.connect(gal.path)
    if bypass_triggers:
        con.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
        con.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
    try:
        for st in statements:
            con.execute(st)
        con.commit()
    finally:
        con.close()


@pytest.fixture
def raw_sql():
    """``raw_sql(gal, *statements, bypass_triggers=False)``: statements run straight on the
    database behind the tool's back (see :func:`_raw_sql`)."""
    return _raw_sql


#: What a refused statement raises when run by :func:`raw_sql` (sqlite3's or psycopg's error).
DRIVER_ERRORS = (sqlite3.DatabaseError, psycopg.DatabaseError)


@pytest.fixture
def driver_errors():
    return DRIVER_ERRORS


@pytest.fixture
def repo(gal) -> GalleryRepository:
    return gal.repository()


@pytest.fixture
def emb(repo):
    return repo.get_or_create_embedder("facenet-vggface2", "1.0", DIM, "a" * 64)
