"""Opening, creating and upgrading the gallery SQLite database.

``open_gallery(path)`` returns a :class:`Gallery`: the engine, a session factory and helpers.
Every connection gets ``PRAGMA foreign_keys=ON`` (so ON DELETE CASCADE / SET NULL work),
``journal_mode=WAL`` (readers never block the writer) and a busy timeout, and SQLAlchemy emits
``BEGIN`` itself, so that every statement (SELECT and DDL included) runs inside a real
transaction and SAVEPOINTs work (the pysqlite driver's legacy mode does neither).

Schema changes are Alembic migrations (``migrations/``), run programmatically, in one
transaction (``BEGIN IMMEDIATE``), with foreign keys off while tables are rebuilt and a
``PRAGMA foreign_key_check`` before commit. A database whose revision this code does not know
(written by a newer forensics) is refused with :class:`GalleryVersionError`, never touched.
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
from .models import APPLICATION_ID, GalleryMeta
from .repository import GalleryRepository
from .transaction import Database, raw_connection, write_transaction
from .util import iso_utc, remove_orphans, tool_version

if TYPE_CHECKING:  # pragma: no cover
    from alembic.config import Config

SQLITE_HEADER = b"SQLite format 3\x00"
#: Milliseconds a connection waits for a lock held by another connection before failing.
BUSY_TIMEOUT_MS = 30_000
MEMORY = ":memory:"

PathLike = Union[str, Path]


# --------------------------------------------------------------------------------------------
# Engine
# --------------------------------------------------------------------------------------------


def make_engine(path: PathLike, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Engine:
    """A SQLAlchemy engine on the SQLite file ``path`` (or ``":memory:"``) with our pragmas.

    Does not create tables; use :func:`open_gallery`. Per connection: ``foreign_keys=ON``,
    ``journal_mode=WAL`` (files only), ``busy_timeout``. Transactions start with ``BEGIN``, or
    with what the ``forensics_begin`` execution option says (e.g. ``"BEGIN IMMEDIATE"``).
    """
    memory = str(path) == MEMORY
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
    """What is in a SQLite file before we touch it.

    ``tables``: user tables present; ``application_id``: ``PRAGMA application_id``;
    ``revision``: the Alembic revision stamped in it (None when there is none).
    """

    tables: frozenset[str]
    application_id: int
    revision: Optional[str]

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
    """Raise the right error if ``state`` is not a gallery we may open."""
    if state.empty:
        raise NotAGalleryError(f"{path} is an empty SQLite database, not a forensics gallery; refusing to "
                               "create a gallery over it (delete it or give a new path to create one)")
    if state.application_id != APPLICATION_ID:
        raise NotAGalleryError(
            f"{path} is a SQLite database but not a forensics gallery "
            f"(tables: {', '.join(sorted(state.tables)[:8])}); refusing to modify it"
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

    One transaction (``BEGIN IMMEDIATE``, so two processes opening a new file do not race),
    foreign keys switched off meanwhile (SQLite batch migrations drop and recreate tables) and a
    ``PRAGMA foreign_key_check`` before commit.
    """
    from alembic import command

    cfg = alembic_config()
    with engine.connect() as conn:
        raw = raw_connection(conn)
        raw.execute("PRAGMA foreign_keys = OFF")
        try:
            conn = conn.execution_options(forensics_begin="BEGIN IMMEDIATE")
            with conn.begin():
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, target)
                bad = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if bad:
                    raise GalleryError(
                        f"schema upgrade would leave {len(bad)} broken foreign keys "
                        f"(first: {tuple(bad[0])}); rolled back"
                    )
                rev = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()
        finally:
            raw.execute("PRAGMA foreign_keys = ON")
    return rev


# --------------------------------------------------------------------------------------------
# Gallery
# --------------------------------------------------------------------------------------------


class Gallery(Database):
    """An open gallery database.

    ``path``: the database file (None for an in-memory one); ``engine``: the SQLAlchemy engine;
    ``Session``: the session factory (``expire_on_commit=False``); ``revision``: the schema
    revision. Use ``with gallery.session() as s:`` for one transaction, or
    :meth:`repository` for the high-level operations. Close with :meth:`close` or ``with``.
    """

    def __init__(self, path: Optional[Path], engine: Engine, revision: str) -> None:
        super().__init__(engine)
        self.path = path
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
        """``PRAGMA integrity_check`` plus ``foreign_key_check``; an empty list means healthy."""
        problems: list[str] = []
        try:
            with self.engine.connect() as conn:
                rows = [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check").fetchall()]
                if rows != ["ok"]:
                    problems.extend(rows)
                for r in conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall():
                    problems.append(f"broken foreign key: table {r[0]} rowid {r[1]} -> {r[2]}")
        except SQLAlchemyDatabaseError as exc:  # so damaged that the check itself cannot run
            problems.append(f"the database cannot be read: {exc.orig}")
        return problems

    def backup(self, dest: PathLike) -> Path:
        """A consistent copy of the database at ``dest`` (SQLite online backup; safe while in use)."""
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
        return f"<Gallery {self.path or MEMORY} rev={self.revision}>"


# --------------------------------------------------------------------------------------------
# Opening
# --------------------------------------------------------------------------------------------


def _file_path(path: PathLike, create: bool) -> Optional[Path]:
    """The database file of ``path`` (None for ``":memory:"``), checked to be SQLite if it
    exists; its folder is created when ``create`` allows a new file."""
    if str(path) == MEMORY:
        return None
    fpath = Path(path).expanduser()
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


def _upgrade(engine: Engine, fpath: Optional[Path], label: str, old: Optional[str], *,
             upgrade: bool, backup_on_upgrade: bool) -> Gallery:
    """Migrate a new (``old`` None) or older database to the head revision, with a backup copy
    of an older file first, and record the creation or upgrade in ``gallery_meta``."""
    if old is not None and not upgrade:
        raise GalleryError(
            f"{label} has schema revision {old!r} and needs an upgrade to {head_revision()!r}; "
            "open it with upgrade=True (`forensics gallery init` upgrades it)"
        )
    if old is not None and backup_on_upgrade and fpath is not None:
        _backup_file(fpath, fpath.with_name(f"{fpath.name}.bak-{old}"))
    gallery = Gallery(fpath, engine, upgrade_to_head(engine))
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
    engine = make_engine(tmp, busy_timeout_ms=busy_timeout_ms)
    try:
        _upgrade(engine, tmp, str(fpath), None, upgrade=True, backup_on_upgrade=False)
        engine.dispose()  # the last connection checkpoints the WAL into the file
        os.link(tmp, fpath)
    except FileExistsError:
        pass  # another process created it first: it is complete, open that one
    finally:
        engine.dispose()
        for p in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
            p.unlink(missing_ok=True)


def open_gallery(
    path: PathLike,
    create: bool = True,
    *,
    upgrade: bool = True,
    backup_on_upgrade: bool = True,
    busy_timeout_ms: int = BUSY_TIMEOUT_MS,
) -> Gallery:
    """Open the gallery at ``path``, creating it (``create``) or upgrading it (``upgrade``).

    ``path`` may be ``":memory:"`` (tests). Raises :class:`GalleryNotFoundError` when the file is
    missing and ``create`` is false; :class:`NotAGalleryError` when the file is not SQLite or is
    another application's database; :class:`GalleryVersionError` when it was written by a newer
    forensics (unknown schema revision); :class:`GalleryError` when it needs an upgrade and
    ``upgrade`` is false. Before upgrading an existing older gallery, a copy is written to
    ``<db>.bak-<old revision>`` unless ``backup_on_upgrade`` is false.
    """
    fpath = _file_path(path, create)
    if fpath is not None:
        remove_orphans(fpath.parent, f".{fpath.name}.new-")  # left by a process killed while creating it
    if fpath is not None and not fpath.exists():
        _create_file(fpath, busy_timeout_ms)
    label = str(fpath) if fpath is not None else MEMORY
    state = _existing_state(fpath, label)
    if fpath is not None:
        _classify(label, state)
    engine = make_engine(fpath if fpath is not None else MEMORY, busy_timeout_ms=busy_timeout_ms)
    try:
        if state.revision == head_revision():
            return Gallery(fpath, engine, state.revision)
        return _upgrade(engine, fpath, label, state.revision, upgrade=upgrade,
                        backup_on_upgrade=backup_on_upgrade)
    except BaseException:
        engine.dispose()
        raise


def init_gallery(path: PathLike) -> Gallery:
    """Create a new gallery at ``path`` (or upgrade the one there) and return it open."""
    return open_gallery(path, create=True, upgrade=True)


__all__ = [
    "DatabaseState",
    "Gallery",
    "alembic_config",
    "head_revision",
    "init_gallery",
    "known_revisions",
    "make_engine",
    "open_gallery",
    "upgrade_to_head",
]
