"""Opening, creating and upgrading the gallery database: a SQLite file (the default) or a
PostgreSQL database (:mod:`gallery.location` reads which; :mod:`gallery.postgres` holds what is
particular to PostgreSQL).

``open_gallery(location)`` returns a :class:`Gallery`: the engine, a session factory and helpers.
On SQLite every connection gets ``PRAGMA foreign_keys=ON`` (so ON DELETE CASCADE / SET NULL work),
``journal_mode=WAL`` (readers never block the writer) and a busy timeout, and SQLAlchemy emits
``BEGIN`` itself, so that every statement (SELECT and DDL included) runs inside a real
transaction and SAVEPOINTs work (the pysqlite driver's legacy mode does neither).

Schema changes are Alembic migrations (``migrations/``), run programmatically, in one
transaction (``BEGIN IMMEDIATE``), with foreign keys off while tables are rebuilt and a
``PRAGMA foreign_key_check`` before commit. A database whose revision this code does not know
(written by a newer forensics) is refused with :class:`GalleryVersionError`, never touched.

On PostgreSQL an empty database becomes a gallery (migrated to head in one transaction, under
the gallery's write lock so that two processes creating it at once do not race); another
application's database is refused untouched; an older gallery is upgraded only after a
``pg_dump`` (``backup_on_upgrade=False`` says it was taken: the server has no file to copy).
"""

from __future__ import annotations

import functools
import os
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DatabaseError as SQLAlchemyDatabaseError
from sqlalchemy.pool import StaticPool

import migrations

from .errors import (
    GalleryError,
    GalleryNotFoundError,
    GalleryVersionError,
    NotAGalleryError,
)
from .location import GalleryLocation
from .models import APPLICATION_ID, GalleryMeta
from .postgres import UPGRADE_ADVICE, make_pg_engine, read_state, take_write_lock, unvalidated_constraints
from .repository import GalleryRepository
from .transaction import Database, raw_connection, write_transaction
from .util import iso_utc, remove_orphans, tool_version

if TYPE_CHECKING:  # pragma: no cover
    from alembic.config import Config

SQLITE_HEADER = b"SQLite format 3\x00"
#: Milliseconds a connection waits for a lock held by another connection before failing.
BUSY_TIMEOUT_MS = 30_000

PathLike = Union[str, Path]
Where = Union[str, Path, GalleryLocation]


# --------------------------------------------------------------------------------------------
# Engine
# --------------------------------------------------------------------------------------------


def make_engine(where: Where, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Engine:
    """A SQLAlchemy engine on the gallery database ``where`` (a SQLite file, ``":memory:"`` or a
    PostgreSQL URL: :class:`GalleryLocation`).

    Does not create tables; use :func:`open_gallery`. PostgreSQL: see
    :func:`gallery.postgres.make_pg_engine`. SQLite, per connection: ``foreign_keys=ON``,
    ``journal_mode=WAL`` (files only), ``busy_timeout``. Transactions start with ``BEGIN``, or
    with what the ``forensics_begin`` execution option says (e.g. ``"BEGIN IMMEDIATE"``).
    """
    location = GalleryLocation.parse(where)
    if location.url is not None:
        return make_pg_engine(location)
    return _sqlite_engine(location.path, busy_timeout_ms)


def _sqlite_engine(path: Optional[Path], busy_timeout_ms: int) -> Engine:
    """The SQLite engine of :func:`make_engine` (``path`` None: in memory)."""
    memory = path is None
    if memory:
        engine = create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    else:
        engine = create_engine(f"sqlite:///{Path(path)}")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Take transaction control away from the driver (see SQLAlchemy "sqlite_transactions").
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cur.execute("PRAGMA foreign_keys = ON")
            if not memory:
                cur.execute("PRAGMA journal_mode = WAL")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get("forensics_begin", "BEGIN"))

    return engine


# --------------------------------------------------------------------------------------------
# Migrations
# --------------------------------------------------------------------------------------------


def alembic_config() -> "Config":
    """An Alembic ``Config`` pointing at the packaged ``migrations/`` folder (no .ini read)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations.SCRIPT_LOCATION))
    cfg.set_main_option("path_separator", "os")
    return cfg


@functools.lru_cache(maxsize=1)
def _script_directory():
    """The parsed migration scripts (cached: they do not change while the process runs)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest schema revision this code knows (e.g. ``"0002"``)."""
    head = _script_directory().get_current_head()
    assert head is not None
    return head


def known_revisions() -> list[str]:
    """All schema revisions this code knows, oldest first."""
    return [s.revision for s in reversed(list(_script_directory().walk_revisions()))]


@dataclass(frozen=True)
class DatabaseState:
    """What is in a database before we touch it.

    ``tables``: user tables present; ``application_id``: ``PRAGMA application_id`` (on
    PostgreSQL: :data:`APPLICATION_ID` when ``gallery_meta`` carries the gallery marker, else 0);
    ``revision``: the Alembic revision stamped in it (None when there is none); ``kind``: the
    database's kind, for messages.
    """

    tables: frozenset[str]
    application_id: int
    revision: Optional[str]
    kind: str = "SQLite"

    @property
    def empty(self) -> bool:
        """No tables at all: a new (or zero-byte) database."""
        return not self.tables


def _read_state_readonly(path: Path) -> DatabaseState:
    """Inspect an existing file through a read-only connection (no pragma may change it)."""
    con = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        return _state_of(con)
    finally:
        con.close()


def _state_of(raw: sqlite3.Connection) -> DatabaseState:
    tables = frozenset(
        r[0]
        for r in raw.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
        )
    )
    app_id = raw.execute("PRAGMA application_id").fetchone()[0]
    revision = None
    if "alembic_version" in tables:
        rows = raw.execute("SELECT version_num FROM alembic_version").fetchall()
        if len(rows) > 1:
            raise GalleryError(
                f"the gallery has {len(rows)} schema revisions stamped; it is damaged"
            )
        revision = rows[0][0] if rows else None
    return DatabaseState(tables, int(app_id), revision)


def _check_header(path: Path) -> None:
    if path.is_dir():
        raise NotAGalleryError(f"{path} is a directory, not a forensics gallery database")
    if path.stat().st_size == 0:
        raise NotAGalleryError(
            f"{path} is an empty (zero-byte) file, not a forensics gallery; refusing to create a gallery "
            "over it (a truncated or wrongly copied gallery looks like this): restore the gallery from "
            "a backup, or delete the file or give a new path to create one")
    with open(path, "rb") as fh:
        header = fh.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise NotAGalleryError(
            f"{path} is not a SQLite database, so it is not a forensics gallery "
            "(give the path of a gallery .db file, or a new path to create one)"
        )


def _classify(path: str, state: DatabaseState) -> None:
    """Raise the right error if ``state`` is not a gallery we may open (an empty PostgreSQL
    database becomes one before this: see :func:`_open_postgres`)."""
    if state.empty:
        raise NotAGalleryError(f"{path} is an empty SQLite database, not a forensics gallery; refusing to "
                               "create a gallery over it (delete it or give a new path to create one)")
    if state.application_id != APPLICATION_ID:
        raise NotAGalleryError(
            f"{path} is a {state.kind} database but not a forensics gallery "
            f"(tables: {', '.join(sorted(state.tables)[:8])}); refusing to modify it: give --db the "
            f"{'file' if state.kind == 'SQLite' else 'database'} of a forensics gallery, or a new "
            f"{'file' if state.kind == 'SQLite' else 'empty database'} to create one"
        )
    if state.revision is None:
        raise GalleryError(
            f"{path} is a forensics gallery without a schema revision stamp; it is damaged "
            "(restore it from a backup)"
        )
    known = known_revisions()
    if state.revision not in known:
        raise GalleryVersionError(
            f"{path} was written by a newer version of forensics (schema revision "
            f"{state.revision!r}; this forensics {tool_version()} knows up to {known[-1]!r}). "
            "Upgrade forensics (e.g. `pip install -U forensics`) to open it; "
            "it has not been modified."
        )


def _backup_file(src_path: Path, dest: Path) -> None:
    src = sqlite3.connect(str(src_path))
    try:
        dst = sqlite3.connect(str(dest))
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


def upgrade_to_head(engine: Engine, target: str = "head") -> str:
    """Run the migrations up to ``target`` on ``engine``'s database; returns the new revision.

    One transaction. On SQLite: ``BEGIN IMMEDIATE`` (so two processes opening a new file do not
    race), foreign keys switched off meanwhile (batch migrations drop and recreate tables) and a
    ``PRAGMA foreign_key_check`` before commit. On PostgreSQL: the gallery's write lock first
    (DDL is transactional there, and constraints are checked as each statement runs).
    """
    if engine.dialect.name == "postgresql":
        return _upgrade_postgres(engine, target)
    return _upgrade_sqlite(engine, target)


def _run_migrations(conn: Connection, target: str) -> str:
    """Alembic's upgrade to ``target`` on ``conn`` (inside the caller's transaction); the
    revision stamped after it."""
    from alembic import command

    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, target)
    return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()


def _upgrade_postgres(engine: Engine, target: str) -> str:
    with engine.connect() as conn:
        with conn.begin():
            take_write_lock(conn)
            return _run_migrations(conn, target)


def _upgrade_sqlite(engine: Engine, target: str) -> str:
    with engine.connect() as conn:
        raw = raw_connection(conn)
        raw.execute("PRAGMA foreign_keys = OFF")
        try:
            conn = conn.execution_options(forensics_begin="BEGIN IMMEDIATE")
            with conn.begin():
                rev = _run_migrations(conn, target)
                bad = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if bad:
                    raise GalleryError(
                        f"schema upgrade would leave {len(bad)} broken foreign keys "
                        f"(first: {tuple(bad[0])}); rolled back"
                    )
        finally:
            raw.execute("PRAGMA foreign_keys = ON")
    return rev


# --------------------------------------------------------------------------------------------
# Gallery
# --------------------------------------------------------------------------------------------


class Gallery(Database):
    """An open gallery database.

    ``location``: where it lives (:class:`GalleryLocation`; its ``display()`` is what to show);
    ``path``: the SQLite file (None in memory and on PostgreSQL); ``engine``: the SQLAlchemy engine;
    ``Session``: the session factory (``expire_on_commit=False``); ``revision``: the schema
    revision. Use ``with gallery.session() as s:`` for one transaction, or
    :meth:`repository` for the high-level operations. Close with :meth:`close` or ``with``.
    """

    def __init__(self, location: GalleryLocation, engine: Engine, revision: str) -> None:
        super().__init__(engine)
        self.location = location
        self.path = location.path
        self.revision = revision

    def repository(self) -> GalleryRepository:
        """A :class:`~gallery.repository.GalleryRepository` running each call in its own transaction."""
        return GalleryRepository(self)

    # -- facts --------------------------------------------------------------------------------

    def get_meta(self, key: str, default: Any = None) -> Any:
        """The JSON value stored under ``key`` in ``gallery_meta`` (``default`` when absent)."""
        with self.session() as s:
            row = s.get(GalleryMeta, key)
            return default if row is None else row.value

    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON value under ``key`` in ``gallery_meta`` (insert or replace), in a write
        transaction (``BEGIN IMMEDIATE``) like every other write."""
        with write_transaction(self) as s:
            s.merge(GalleryMeta(key=key, value=value))

    def integrity_check(self) -> list[str]:
        """SQLite: ``PRAGMA integrity_check`` plus ``foreign_key_check``. PostgreSQL: constraints
        added unvalidated (the server checks every other one on each write; see
        :mod:`gallery.postgres`). An empty list means healthy."""
        problems: list[str] = []
        try:
            with self.engine.connect() as conn:
                if self.location.is_postgres:
                    return unvalidated_constraints(conn)
                rows = [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check").fetchall()]
                if rows != ["ok"]:
                    problems.extend(rows)
                for r in conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall():
                    problems.append(f"broken foreign key: table {r[0]} rowid {r[1]} -> {r[2]}")
        except SQLAlchemyDatabaseError as exc:  # so damaged that the check itself cannot run
            problems.append(f"the database cannot be read: {exc.orig}")
        return problems

    def backup(self, dest: PathLike) -> Path:
        """A consistent copy of the database at ``dest`` (SQLite online backup; safe while in use).
        A PostgreSQL gallery is backed up with the server's tools (``pg_dump``)."""
        if self.location.is_postgres:
            raise GalleryError(f"{self.location.display()} is a PostgreSQL gallery: back it up with pg_dump")
        dest = Path(dest)
        with self.engine.connect() as conn:
            raw = raw_connection(conn)
            out = sqlite3.connect(str(dest))
            try:
                raw.backup(out)
            finally:
                out.close()
        return dest

    def close(self) -> None:
        """Close all pooled connections (a WAL checkpoint happens when the last one closes)."""
        self.engine.dispose()

    def __enter__(self) -> "Gallery":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Gallery {self.location.display()} rev={self.revision}>"


# --------------------------------------------------------------------------------------------
# Opening
# --------------------------------------------------------------------------------------------


def _file_path(location: GalleryLocation, create: bool) -> Optional[Path]:
    """The SQLite file of ``location`` (None in memory), checked to be SQLite if it exists; its
    folder is created when ``create`` allows a new file."""
    if location.path is None:
        return None
    fpath = location.path
    if fpath.exists():
        _check_header(fpath)
    elif not create:
        raise GalleryNotFoundError(f"no gallery at {fpath} (create one with `forensics gallery init`)")
    else:
        fpath.parent.mkdir(parents=True, exist_ok=True)
    return fpath


def _existing_state(fpath: Optional[Path], label: str) -> DatabaseState:
    """What the file holds, looked at read-only: a file that is not ours must come out
    unmodified (even the WAL pragma would rewrite its header)."""
    if fpath is None:
        return DatabaseState(frozenset(), 0, None)
    try:
        return _read_state_readonly(fpath)
    except sqlite3.DatabaseError as exc:
        raise NotAGalleryError(
            f"{label} cannot be read as a SQLite database ({exc}); "
            "it is not a forensics gallery or it is damaged"
        ) from exc


def _upgrade(engine: Engine, location: GalleryLocation, old: Optional[str], *,
             upgrade: bool, backup_on_upgrade: bool) -> Gallery:
    """Migrate a new (``old`` None) or older database to the head revision, with a backup copy
    of an older SQLite file first, and record the creation or upgrade in ``gallery_meta``."""
    label = location.display()
    if old is not None and not upgrade:
        raise GalleryError(
            f"{label} has schema revision {old!r} and needs an upgrade to {head_revision()!r}; "
            "open it with upgrade=True (`forensics gallery init` upgrades it)"
        )
    if old is not None and backup_on_upgrade and location.path is not None:
        _backup_file(location.path, location.path.with_name(f"{location.path.name}.bak-{old}"))
    gallery = Gallery(location, engine, upgrade_to_head(engine))
    now = iso_utc()
    if old is None:
        gallery.set_meta("created_at", now)
        gallery.set_meta("created_by", tool_version())
    gallery.set_meta("last_upgrade", {"at": now, "from": old, "to": gallery.revision, "by": tool_version()})
    return gallery


def _create_file(fpath: Path, busy_timeout_ms: int) -> None:
    """A new gallery at ``fpath``, made whole beside it and then linked into place in one step:
    no process ever sees a half-created gallery, and when several create the same one at once,
    the first link wins and the others open it."""
    tmp = fpath.with_name(f".{fpath.name}.new-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    engine = _sqlite_engine(tmp, busy_timeout_ms)
    try:
        _upgrade(engine, GalleryLocation(path=tmp), None, upgrade=True, backup_on_upgrade=False)
        engine.dispose()  # the last connection checkpoints the WAL into the file
        os.link(tmp, fpath)
    except FileExistsError:
        pass  # another process created it first: it is complete, open that one
    finally:
        engine.dispose()
        for p in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
            p.unlink(missing_ok=True)


def _postgres_state(engine: Engine) -> DatabaseState:
    """What the PostgreSQL database holds (the engine names a server that cannot be reached:
    :mod:`gallery.pg_errors`)."""
    with engine.connect() as conn:
        tables, app_id, revision = read_state(conn)
    return DatabaseState(tables, app_id, revision, kind="PostgreSQL")


def _open_postgres(location: GalleryLocation, create: bool, upgrade: bool, backup_on_upgrade: bool) -> Gallery:
    """:func:`open_gallery` on PostgreSQL: an empty database becomes a gallery (``create``); an
    older gallery is upgraded only once a backup was taken (``backup_on_upgrade`` false)."""
    label = location.display()
    engine = make_engine(location)
    try:
        state = _postgres_state(engine)
        if state.empty:
            if not create:
                raise GalleryNotFoundError(f"no gallery in {label}: the database is empty "
                                           "(create one with `forensics gallery init`)")
            return _upgrade(engine, location, None, upgrade=True, backup_on_upgrade=False)
        _classify(label, state)
        if state.revision == head_revision():
            return Gallery(location, engine, state.revision)
        if upgrade and backup_on_upgrade:
            raise GalleryError(f"{label} has schema revision {state.revision!r} and needs an upgrade to "
                               f"{head_revision()!r}: {UPGRADE_ADVICE}")
        return _upgrade(engine, location, state.revision, upgrade=upgrade, backup_on_upgrade=False)
    except BaseException:
        engine.dispose()
        raise


def _open_sqlite(location: GalleryLocation, create: bool, upgrade: bool, backup_on_upgrade: bool,
                 busy_timeout_ms: int) -> Gallery:
    """:func:`open_gallery` on a SQLite file or in memory."""
    fpath = _file_path(location, create)
    if fpath is not None:
        remove_orphans(fpath.parent, f".{fpath.name}.new-")  # left by a process killed while creating it
    if fpath is not None and not fpath.exists():
        _create_file(fpath, busy_timeout_ms)
    label = location.display()
    state = _existing_state(fpath, label)
    if fpath is not None:
        _classify(label, state)
    engine = _sqlite_engine(fpath, busy_timeout_ms)
    try:
        if state.revision == head_revision():
            return Gallery(location, engine, state.revision)
        return _upgrade(engine, location, state.revision, upgrade=upgrade, backup_on_upgrade=backup_on_upgrade)
    except BaseException:
        engine.dispose()
        raise


def open_gallery(
    where: Where,
    create: bool = True,
    *,
    upgrade: bool = True,
    backup_on_upgrade: bool = True,
    busy_timeout_ms: int = BUSY_TIMEOUT_MS,
) -> Gallery:
    """Open the gallery at ``where`` (a SQLite file path, ``":memory:"`` for tests, a PostgreSQL
    URL or a :class:`GalleryLocation`), creating it (``create``) or upgrading it (``upgrade``).

    Raises :class:`GalleryLocationError` for a URL of another kind of database;
    :class:`GalleryNotFoundError` when the file is missing (the PostgreSQL database empty) and
    ``create`` is false; :class:`NotAGalleryError` when the file is not SQLite or the database is
    another application's; :class:`GalleryVersionError` when it was written by a newer forensics
    (unknown schema revision); :class:`GalleryError` when it needs an upgrade and ``upgrade`` is
    false. Before upgrading an existing older SQLite gallery, a copy is written to
    ``<db>.bak-<old revision>`` unless ``backup_on_upgrade`` is false; an older PostgreSQL
    gallery is upgraded only with ``backup_on_upgrade`` false, after a ``pg_dump``
    (:data:`gallery.postgres.UPGRADE_ADVICE`).
    """
    location = GalleryLocation.parse(where)
    if location.is_postgres:
        return _open_postgres(location, create, upgrade, backup_on_upgrade)
    return _open_sqlite(location, create, upgrade, backup_on_upgrade, busy_timeout_ms)


def init_gallery(where: Where, *, backup_on_upgrade: bool = True) -> Gallery:
    """Create a new gallery at ``where`` (or upgrade the one there) and return it open."""
    return open_gallery(where, create=True, upgrade=True, backup_on_upgrade=backup_on_upgrade)


__all__ = [
    "DatabaseState",
    "Gallery",
    "GalleryLocation",
    "alembic_config",
    "head_revision",
    "init_gallery",
    "known_revisions",
    "make_engine",
    "open_gallery",
    "upgrade_to_head",
]
