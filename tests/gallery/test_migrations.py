"""The Alembic migrations on both backends: from an empty database and from every earlier revision
to head, keeping the rows; down to nothing and up again."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from gallery import open_gallery, pgvector
from gallery.db import alembic_config, head_revision, known_revisions, make_engine, upgrade_to_head
from gallery.location import GalleryLocation
from gallery.models import Base
from gallery.verify import verify_gallery


def _schema_problems(g) -> list:
    """Differences between the models (on PostgreSQL with the vector tables) and the database's
    schema (none expected)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    expected = pgvector.schema(g.location.is_postgres)
    with g.engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), expected)


def _open_upgrading(url: str):
    """Open and upgrade as an operator would (on PostgreSQL having taken a pg_dump first)."""
    return open_gallery(url, backup_on_upgrade=not GalleryLocation.parse(url).is_postgres)


@pytest.mark.parametrize("start", [None] + known_revisions()[:-1])
def test_upgrade_to_head_from_every_earlier_revision(gallery_url, start):
    if start is not None:
        engine = make_engine(gallery_url)
        assert upgrade_to_head(engine, start) == start
        with engine.begin() as c:
            c.execute(text("INSERT INTO subjects (external_id, meta, created_at) "
                           "VALUES ('OLD-1', '{}', '2024-01-01T00:00:00.000000Z')"))
        engine.dispose()
    with _open_upgrading(gallery_url) as g:
        assert g.revision == head_revision()
        assert g.get_meta("last_upgrade")["from"] == start
        assert (g.repository().get_subject("OLD-1") is not None) == (start is not None)
        assert _schema_problems(g) == []
        assert not [p for p in verify_gallery(g).problems if "triggers are missing" in p]


def test_downgrade_to_nothing_and_up_again(gallery_url):
    from alembic import command

    open_gallery(gallery_url).close()
    engine = make_engine(gallery_url)
    try:
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "base")
            left = set(Base.metadata.tables) & _tables(conn)
        assert left == set()
        assert upgrade_to_head(engine) == head_revision()
    finally:
        engine.dispose()
    with open_gallery(gallery_url, create=False) as g:
        assert _schema_problems(g) == []
        assert verify_gallery(g).ok


def _tables(conn) -> set[str]:
    from sqlalchemy import inspect

    return set(inspect(conn).get_table_names())
