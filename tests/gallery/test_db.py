"""gallery/db.py: creating, opening, upgrading and refusing gallery databases."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from gallery import GalleryError, GalleryNotFoundError, GalleryVersionError, NotAGalleryError, head_revision, open_gallery
from gallery.db import known_revisions, make_engine, upgrade_to_head
from gallery.models import APPLICATION_ID, Base


@pytest.fixture
def gal(sqlite_gal):
    """What this file tests is the SQLite file's (or its index files'): the gallery is one."""
    return sqlite_gal


def file_sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_init_creates_schema_at_head_with_pragmas(gal, db_path):
    assert known_revisions() == ["0001", "0002", "0003", "0004"]
    assert gal.revision == head_revision() == "0004"
    with gal.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert c.exec_driver_sql("PRAGMA application_id").scalar() == APPLICATION_ID
        tables = {r[0] for r in c.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"subjects", "images", "faces", "embeddings", "embedders", "queries", "query_inputs",
            "query_candidates", "reviews", "audit_events", "gallery_meta", "alembic_version"} <= tables
    assert gal.get_meta("created_by")
    assert gal.integrity_check() == []
    # reopening is a no-op
    gal.close()
    with open_gallery(db_path, create=False) as g2:
        assert g2.revision == "0004"


def test_models_match_migrations(gal):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with gal.engine.connect() as conn:
        mc = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(mc, Base.metadata) == []


def test_upgrade_from_older_revision_keeps_data_and_backs_up(db_path):
    engine = make_engine(db_path)
    assert upgrade_to_head(engine, "0001") == "0001"
    with engine.begin() as c:
        c.exec_driver_sql(
            "INSERT INTO subjects (external_id, meta, created_at) "
            "VALUES ('OLD-1', '{}', '2024-01-01T00:00:00.000000Z')"
        )
    engine.dispose()

    with pytest.raises(GalleryError, match="needs an upgrade") as ei:
        open_gallery(db_path, upgrade=False)
    assert "`forensics gallery init`" in str(ei.value)  # the command that upgrades it

    with open_gallery(db_path) as g:
        assert g.revision == "0004"
        repo = g.repository()
        assert repo.get_subject("OLD-1") is not None
        assert g.get_meta("last_upgrade")["from"] == "0001"
    backup = db_path.with_name(db_path.name + ".bak-0001")
    assert backup.exists()
    con = sqlite3.connect(backup)
    assert con.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0001"
    con.close()


def test_new_gallery_records_its_creation(gal):
    assert gal.get_meta("created_at") == gal.get_meta("last_upgrade")["at"]
    assert gal.get_meta("last_upgrade")["from"] is None and gal.get_meta("last_upgrade")["to"] == "0004"


def test_refuses_database_from_newer_version(gal, db_path):
    gal.close()
    con = sqlite3.connect(db_path)
    con.execute("UPDATE alembic_version SET version_num = '0099_future_feature'")
    con.commit()
    con.close()
    before = file_sha(db_path)
    with pytest.raises(GalleryVersionError) as ei:
        open_gallery(db_path)
    msg = str(ei.value)
    assert "newer version of forensics" in msg and "Upgrade forensics" in msg
    assert "0099_future_feature" in msg
    assert file_sha(db_path) == before  # untouched


def test_not_a_sqlite_file(tmp_path):
    p = tmp_path / "notes.db"
    p.write_text("this is not a database, just some text " * 10)
    with pytest.raises(NotAGalleryError, match="not a SQLite database"):
        open_gallery(p)
    assert p.read_text().startswith("this is not")


def test_other_applications_sqlite_db_is_refused_untouched(tmp_path):
    p = tmp_path / "other.db"
    con = sqlite3.connect(p)
    con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    con.commit()
    con.close()
    before = file_sha(p)
    with pytest.raises(NotAGalleryError, match="not a forensics gallery"):
        open_gallery(p)
    assert file_sha(p) == before


@pytest.mark.parametrize("kind", ["zero-byte file", "empty SQLite database"])
def test_an_empty_file_is_refused_not_made_a_gallery(tmp_path, kind):
    """A truncated or wrongly copied gallery must not silently become a new, empty one."""
    p = tmp_path / "g.db"
    if kind == "zero-byte file":
        p.write_bytes(b"")
    else:
        sqlite3.connect(p).execute("PRAGMA user_version = 0").connection.close()
    before = p.read_bytes()
    with pytest.raises(NotAGalleryError, match="zero-byte|empty SQLite"):
        open_gallery(p, create=True)
    assert p.read_bytes() == before


def _create_and_count(path: str) -> int:
    g = open_gallery(path)
    try:
        return len(g.repository().list_subjects())
    finally:
        g.close()


def test_concurrent_creation_of_one_new_gallery_is_safe(tmp_path):
    """Six processes creating the same new gallery at once: all open it, none fails, one file."""
    import multiprocessing

    p = tmp_path / "new" / "g.db"
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        assert pool.map(_create_and_count, [str(p)] * 6) == [0] * 6
    g = open_gallery(p, create=False)
    assert g.revision == head_revision()
    g.close()
    assert sorted(f.name for f in p.parent.iterdir() if not f.name.startswith("g.db")) == []


def test_a_creation_killed_halfway_leaves_nothing_behind(tmp_path):
    """The temporary file of a creator that died (its pid gone) is removed by the next creation."""
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = tmp_path / f".g.db.new-{int(dead.stdout)}-abc"
    leftover.write_bytes(b"half a gallery")
    open_gallery(tmp_path / "g.db").close()
    assert not leftover.exists()


def test_missing_file_without_create(tmp_path):
    p = tmp_path / "nope.db"
    with pytest.raises(GalleryNotFoundError, match="forensics gallery init"):
        open_gallery(p, create=False)
    assert not p.exists()


def test_in_memory_gallery(enroll, dim):
    with open_gallery(":memory:") as g:
        r = g.repository()
        e = r.get_or_create_embedder("m", "1", dim)
        enroll(r, e, "A")
        assert r.count_embeddings(e) == 1


def test_backup_is_a_consistent_copy(gal, repo, emb, enroll, tmp_path):
    enroll(repo, emb, "B-1", n_images=2)
    copy = gal.backup(tmp_path / "copy.db")
    with open_gallery(copy, create=False) as g2:
        assert g2.repository().count_images() == 2


def test_foreign_keys_enforced(gal, sha):
    with pytest.raises(IntegrityError, match="FOREIGN KEY"):
        with gal.session() as s:
            s.execute(text(
                "INSERT INTO images (subject_id, sha256, n_faces, enrolled_at) "
                "VALUES (999, :h, 0, '2024-01-01T00:00:00.000000Z')"), {"h": sha("fk")})
