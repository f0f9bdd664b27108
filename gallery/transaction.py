"""Transactions on a gallery database, shared by every storage module (repository parts, audit).

A storage call runs on a *source*: a :class:`Database` (the call is its own transaction) or an
open SQLAlchemy ``Session`` (the call joins the caller's transaction; a write goes inside a
SAVEPOINT, so it is still all or nothing, and the caller commits). So several writes, e.g. a
removal and the audit event that records it, can share one transaction::

    with write_transaction(gallery) as s:
        GalleryRepository(s).remove_subject("B-100")
        audit.append_event(s, "officer", "remove", "B-100")

Writes on a :class:`Database` take the write lock up front (``BEGIN IMMEDIATE``): no deferred
read->write upgrade, which in WAL mode fails at once (SQLITE_BUSY) instead of waiting on the
busy timeout. On PostgreSQL every write (on a Database or in a caller's session) takes the
gallery's advisory write lock instead (:func:`gallery.postgres.hold_write_lock`), so writers run
one at a time there too.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from typing import Any, ContextManager, Iterator, Sequence, TypeVar, Union

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from .errors import GalleryReadOnlyError
from .postgres import hold_write_lock, snapshot_options

#: Ids per ``IN (...)`` clause (SQLite's historical limit is 999 bound parameters).
CHUNK = 900

T = TypeVar("T")


class Database:
    """An engine and its session factory (``Session``, ``expire_on_commit=False``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.Session: sessionmaker[Session] = sessionmaker(bind=engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session inside one transaction: committed on normal exit, rolled back on error. Its
        reads see one state of the database (on PostgreSQL: REPEATABLE READ)."""
        with self.Session() as s:
            with s.begin():
                s.connection(execution_options=snapshot_options(self.engine))
                yield s


Source = Union[Database, Session]


def check_source(source: object, user: str) -> Source:
    """``source`` when it is a Database (a Gallery) or a Session; TypeError naming ``user`` if not."""
    if not isinstance(source, (Database, Session)):
        raise TypeError(f"{user} needs a Gallery or a Session, not {type(source)}")
    return source


@contextmanager
def read_transaction(source: Source) -> Iterator[Session]:
    """A session to read in: a new transaction on a Database, or the caller's session as is."""
    if isinstance(source, Database):
        with source.session() as s:
            yield s
    else:
        yield source


@contextmanager
def write_transaction(source: Source) -> Iterator[Session]:
    """A session to write in: a new ``BEGIN IMMEDIATE`` transaction on a Database (committed on
    normal exit), or a SAVEPOINT in the caller's session (released; the caller commits). On
    PostgreSQL either holds the gallery's write lock until the transaction ends."""
    if isinstance(source, Database):
        with read_only_named(source), source.Session() as s:
            with s.begin():
                s.connection(execution_options={"forensics_begin": "BEGIN IMMEDIATE"})
                hold_write_lock(s)
                yield s
    else:
        hold_write_lock(source)
        with source.begin_nested():
            yield source


@contextmanager
def read_only_named(db: Database) -> Iterator[None]:
    """SQLite refusing to write a read-only gallery (the file's or its folder's permissions, a
    read-only disk) as a `GalleryReadOnlyError` naming the file; nothing was written."""
    try:
        yield
    except OperationalError as e:
        if not str(getattr(e.orig, "sqlite_errorname", "")).startswith("SQLITE_READONLY"):
            raise
        raise GalleryReadOnlyError(
            f"{db.engine.url.database}: the gallery cannot be written (it is read-only: the permissions of the "
            "file or its folder, or a read-only disk) and this command records its work in it; get write access, "
            "or work on a copy") from None


def raw_connection(conn: Connection) -> sqlite3.Connection:
    """The sqlite3 connection under ``conn``, without starting a SQLAlchemy transaction."""
    raw = conn.connection.dbapi_connection
    assert raw is not None
    return raw  # type: ignore[return-value]


@contextmanager
def bulk_cursor(s: Session, sql: str, params: tuple) -> Iterator[Any]:
    """A DB-API cursor on the session's current transaction (same snapshot) that has run ``sql``
    with ``params`` (for bulk reads: several times faster than ORM rows for 100k+ blobs).
    ``sql`` marks parameters with ``?``, rewritten as ``%s`` for drivers of another paramstyle
    (psycopg); it must hold no other ``?`` or ``%``."""
    conn = s.connection()
    if conn.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cur.execute(sql, params)
        yield cur
    finally:
        cur.close()


def chunks(seq: Sequence[T], n: int = CHUNK) -> Iterator[Sequence[T]]:
    """``seq`` in slices of at most ``n`` (one ``IN (...)`` clause each)."""
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


class Store:
    """Base of the per-concern storage classes: runs each call on its source (see the module)."""

    def __init__(self, source: Source) -> None:
        self._source = check_source(source, type(self).__name__)

    def _read(self) -> ContextManager[Session]:
        return read_transaction(self._source)

    def _write(self) -> ContextManager[Session]:
        return write_transaction(self._source)


__all__ = [
    "CHUNK",
    "Database",
    "Source",
    "Store",
    "bulk_cursor",
    "check_source",
    "chunks",
    "raw_connection",
    "read_transaction",
    "write_transaction",
]
