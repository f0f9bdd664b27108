"""A gallery in a PostgreSQL database: the engine, what the database holds before we touch it,
the gallery's write lock, and what replaces the SQLite-file parts there.

* Engine: psycopg 3, ``pool_pre_ping`` (a connection dropped by the server or a restart is
  replaced, not handed out dead); the server unreachable, a login refused, a connection lost
  mid-command, work the server cannot do now or a right the role lacks are errors naming the
  gallery (:mod:`gallery.pg_errors`).
* Marker: a SQLite gallery says it is one with ``PRAGMA application_id``; on PostgreSQL the
  ``gallery_meta`` table carries the comment :data:`gallery.models.PG_MARKER` (migration 0001), so a database of
  another application is refused untouched.
* Reads: a transaction that is not a write sees one state of the database throughout, as a
  SQLite read transaction does: REPEATABLE READ (:func:`snapshot_options`). Writes stay READ
  COMMITTED, so that after waiting for the write lock they see what the writer before committed.
* Write lock: SQLite writers take the database's write lock up front (``BEGIN IMMEDIATE``); on
  PostgreSQL every write transaction takes the gallery's transaction-scoped advisory lock
  (:func:`take_write_lock`), so writers run one at a time, exactly as on SQLite: the audit hash
  chain is appended in order and two enrollments of one photo cannot both pass the duplicate
  check (the unique constraints refuse it anyway). Readers never wait for it.
* Backups: there is no file to copy. An existing PostgreSQL gallery is upgraded only when the
  caller says a backup was taken (``pg_dump``): :data:`UPGRADE_ADVICE`.
* Integrity: the server enforces every constraint on every write and cannot be told not to by
  the tool; the check left is that no constraint was added ``NOT VALID`` (unchecked rows).
"""

from __future__ import annotations

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from .errors import GalleryError
from .location import GalleryLocation
from .models import APPLICATION_ID, PG_MARKER
from .pg_errors import name_server_errors

#: The key of the gallery's advisory write lock (per database: PostgreSQL keys advisory locks by
#: database as well).
WRITE_LOCK_KEY = APPLICATION_ID
#: What an operator does before an existing PostgreSQL gallery is upgraded.
UPGRADE_ADVICE = ("back the database up first (`pg_dump -Fc -f gallery-before-upgrade.dump DBNAME`), then "
                  "run `forensics gallery init --no-backup` as the database owner to upgrade it")

_STATE_SQL = """
SELECT c.relname, obj_description(c.oid, 'pg_class')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema()
"""


def make_pg_engine(location: GalleryLocation) -> Engine:
    """A SQLAlchemy engine on the PostgreSQL gallery ``location`` (psycopg 3, pre-ping; the
    server's failures named: :mod:`gallery.pg_errors`)."""
    engine = create_engine(location.url, pool_pre_ping=True)
    name_server_errors(engine, location)
    return engine


def read_state(conn: Connection) -> tuple[frozenset[str], int, str | None]:
    """(tables of the current schema, the application id the marker gives or 0, the Alembic
    revision stamped or None)."""
    rows = conn.execute(text(_STATE_SQL)).all()
    tables = frozenset(r[0] for r in rows)
    marker = {r[0]: r[1] for r in rows}.get("gallery_meta")
    revision = None
    if "alembic_version" in tables:
        stamped = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        if len(stamped) > 1:
            raise GalleryError(f"the gallery has {len(stamped)} schema revisions stamped; it is damaged")
        revision = stamped[0] if stamped else None
    return tables, APPLICATION_ID if marker == PG_MARKER else 0, revision


#: The execution options of a read transaction on PostgreSQL (one snapshot for all its reads).
SNAPSHOT = {"isolation_level": "REPEATABLE READ"}


def snapshot_options(engine: Engine) -> dict[str, str]:
    """Execution options giving a transaction on ``engine`` one snapshot for all its reads (SQLite
    read transactions have one already: none)."""
    return SNAPSHOT if engine.dialect.name == "postgresql" else {}


def take_write_lock(conn: Connection) -> None:
    """Wait for the gallery's write lock; held until the transaction ends (see the module)."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": WRITE_LOCK_KEY})


def hold_write_lock(s: Session) -> None:
    """:func:`take_write_lock` in the session's transaction when its database is PostgreSQL."""
    conn = s.connection()
    if conn.dialect.name == "postgresql":
        take_write_lock(conn)


def unvalidated_constraints(conn: Connection) -> list[str]:
    """Constraints of the current schema added ``NOT VALID`` (rows older than them unchecked)."""
    rows = conn.execute(text(
        "SELECT c.conrelid::regclass::text, c.conname FROM pg_constraint c "
        "JOIN pg_namespace n ON n.oid = c.connamespace "
        "WHERE n.nspname = current_schema() AND NOT c.convalidated ORDER BY 1, 2")).all()
    return [f"constraint {name} on {table} is not validated" for table, name in rows]


def trigger_names(conn: Connection) -> set[str]:
    """The names of the (user) triggers on the tables of the current schema."""
    return set(conn.execute(text(
        "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE NOT t.tgisinternal AND n.nspname = current_schema()")).scalars())


__all__ = [
    "UPGRADE_ADVICE",
    "WRITE_LOCK_KEY",
    "hold_write_lock",
    "make_pg_engine",
    "read_state",
    "snapshot_options",
    "take_write_lock",
    "trigger_names",
    "unvalidated_constraints",
]
