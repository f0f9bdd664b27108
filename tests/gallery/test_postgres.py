"""A gallery in PostgreSQL (the session's throwaway server): created in an empty database,
refused in another application's or a newer one's, upgraded only after a backup, append-only by
trigger, and nothing SQLite-only run on it."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from gallery import GalleryError, GalleryNotFoundError, GalleryVersionError, NotAGalleryError, open_gallery
from gallery.db import head_revision, make_engine, upgrade_to_head
from gallery.location import GalleryLocation
from gallery.models import PG_MARKER
from gallery.verify import PG_APPEND_ONLY_TRIGGERS, verify_gallery


def _sql(url: str, *statements: str) -> list:
    """Run ``statements`` on ``url``'s database as its owner (autocommit); the last one's rows."""
    loc = GalleryLocation.parse(url)
    rows: list = []
    with psycopg.connect(loc.url.set(drivername="postgresql").render_as_string(hide_password=False),
                         autocommit=True) as con:
        for st in statements:
            cur = con.execute(st)
            rows = cur.fetchall() if cur.description else []
    return rows


def test_an_empty_database_becomes_a_gallery_at_head(pg_url):
    with open_gallery(pg_url) as g:
        assert g.revision == head_revision() and g.path is None and g.location.is_postgres
        assert g.get_meta("created_by") and g.integrity_check() == []
        assert verify_gallery(g).ok
    tables = {r[0] for r in _sql(pg_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"subjects", "images", "faces", "embeddings", "embedders", "queries", "query_inputs",
            "query_candidates", "reviews", "audit_events", "gallery_meta", "alembic_version"} <= tables
    assert _sql(pg_url, "SELECT obj_description('gallery_meta'::regclass, 'pg_class')") == [(PG_MARKER,)]
    with open_gallery(pg_url, create=False) as g2:  # reopening changes nothing
        assert g2.revision == head_revision()


def test_models_match_migrations_on_postgresql(pg_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from gallery.pgvector import schema

    with open_gallery(pg_url) as g, g.engine.connect() as conn:
        mc = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(mc, schema(postgres=True)) == []  # the models and the vector tables


def test_an_empty_database_without_create_is_not_found(pg_url):
    with pytest.raises(GalleryNotFoundError, match="the database is empty"):
        open_gallery(pg_url, create=False)
    assert _sql(pg_url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]


def test_another_applications_database_is_refused_untouched(pg_url):
    _sql(pg_url, "CREATE TABLE customers (id integer PRIMARY KEY, name text)")
    with pytest.raises(NotAGalleryError, match="PostgreSQL database but not a forensics gallery.*a new empty database"):
        open_gallery(pg_url)
    tables = _sql(pg_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    assert tables == [("customers",)]


def test_a_database_from_a_newer_forensics_is_refused_untouched(pg_url):
    open_gallery(pg_url).close()
    _sql(pg_url, "UPDATE alembic_version SET version_num = '0099_future_feature'")
    with pytest.raises(GalleryVersionError, match="0099_future_feature"):
        open_gallery(pg_url)
    assert _sql(pg_url, "SELECT version_num FROM alembic_version") == [("0099_future_feature",)]


def test_an_older_gallery_is_upgraded_only_once_backed_up(pg_url):
    engine = make_engine(pg_url)
    assert upgrade_to_head(engine, "0001") == "0001"
    with engine.begin() as c:
        c.execute(text("INSERT INTO subjects (external_id, meta, created_at) "
                       "VALUES ('OLD-1', '{}', '2024-01-01T00:00:00.000000Z')"))
    engine.dispose()
    with pytest.raises(GalleryError, match="pg_dump") as ei:
        open_gallery(pg_url)
    assert "--no-backup" in str(ei.value)
    assert _sql(pg_url, "SELECT version_num FROM alembic_version") == [("0001",)]
    with open_gallery(pg_url, backup_on_upgrade=False) as g:
        assert g.revision == head_revision()
        assert g.get_meta("last_upgrade")["from"] == "0001"
        assert g.repository().get_subject("OLD-1") is not None


def test_the_sqlite_file_parts_do_not_run(pg_url):
    with open_gallery(pg_url) as g:
        with pytest.raises(GalleryError, match="pg_dump"):
            g.backup("copy.db")


def test_a_server_that_cannot_be_reached_is_a_clear_error(tmp_path):
    url = f"postgresql://nobody:s3cret@/nodb?host={tmp_path}"
    with pytest.raises(GalleryError, match="cannot open the PostgreSQL gallery") as ei:
        open_gallery(url)
    assert "s3cret" not in str(ei.value)


@pytest.mark.parametrize("statement", [
    "DELETE FROM audit_events", "UPDATE audit_events SET actor = 'x'", "TRUNCATE audit_events CASCADE",
    "DELETE FROM queries", "UPDATE queries SET operator = 'x'", "UPDATE query_inputs SET position = 9",
    "UPDATE query_candidates SET score = 0", "DELETE FROM query_candidates", "UPDATE reviews SET decision = 'x'",
    "DELETE FROM reviews",
])
def test_audit_and_stored_queries_are_append_only_even_for_the_owner(pg_url, statement):
    from gallery.sealed import add_review_sealed, save_query_sealed

    with open_gallery(pg_url) as g:
        uid = save_query_sealed(g, "officer", {}, ["a" * 64], mode="sketch",
                                inputs=[{"position": 0, "sha256": "a" * 64}],
                                candidates=[{"rank": 1, "subject_external_id": "S1", "score": 0.9}])
        add_review_sealed(g, actor="officer", query_uid=uid, candidate_rank=1, decision="lead", examiner="E. One")
        assert not verify_gallery(g).problems  # the triggers are all there
        with pytest.raises(DBAPIError, match="append-only"):
            with g.engine.begin() as c:
                c.execute(text(statement))
    assert set(PG_APPEND_ONLY_TRIGGERS) <= {r[0] for r in _sql(pg_url, "SELECT tgname FROM pg_trigger")}


def test_a_missing_trigger_is_reported_by_verify(pg_url):
    with open_gallery(pg_url) as g:
        _sql(pg_url, "DROP TRIGGER queries_no_delete ON queries")
        verdict = verify_gallery(g)
    assert any("queries_no_delete" in p for p in verdict.problems)
