"""Where a gallery lives: a SQLite file (the default), an in-memory SQLite database (tests), or a
PostgreSQL database named by a SQLAlchemy URL.

``GalleryLocation.parse(text)`` is the one reading of ``--db`` / ``FORENSICS_DB``:

* ``cases.db``, ``/srv/galleries/cases.db``: a SQLite file;
* ``:memory:``: an in-memory SQLite database;
* ``postgresql://user@host:5432/dbname``, ``postgresql+psycopg://...``, or a Unix socket as
  ``postgresql://user@/dbname?host=/socket/dir``: a PostgreSQL database, always reached through
  psycopg 3 (the URL is normalised to ``postgresql+psycopg``);
* anything else that looks like a URL (``mysql://``, ``sqlite:///``...) is refused with a clear
  error, never taken as a file name.

A password in the URL is used to connect and nowhere else: :meth:`GalleryLocation.display` (what
messages, the audit log and reports show) masks it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from .errors import GalleryLocationError

MEMORY = ":memory:"
SQLITE = "sqlite"
POSTGRESQL = "postgresql"
#: The driver every PostgreSQL URL is normalised to (psycopg 3).
PG_DRIVER = "postgresql+psycopg"
#: The schemes taken as PostgreSQL.
PG_SCHEMES = ("postgresql", PG_DRIVER)
_URL_START = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


@dataclass(frozen=True)
class GalleryLocation:
    """A gallery's place: ``path`` of a SQLite file (None in memory or on PostgreSQL) or ``url``
    of a PostgreSQL database (psycopg driver, password included: never print it, use
    :meth:`display`)."""

    path: Optional[Path] = None
    url: Optional[URL] = None

    @classmethod
    def parse(cls, text: Union[str, Path, "GalleryLocation"]) -> "GalleryLocation":
        """The location named by ``text`` (see the module); :class:`GalleryLocationError` when
        it is a URL of another kind of database."""
        if isinstance(text, GalleryLocation):
            return text
        if isinstance(text, Path):
            return cls(path=text.expanduser())
        if text == MEMORY:
            return cls()
        if not text:
            raise GalleryLocationError("--db is empty: give a gallery file path or a postgresql:// URL")
        if _URL_START.match(text):
            return cls(url=_postgres_url(text))
        return cls(path=Path(text).expanduser())

    @property
    def dialect(self) -> str:
        """``"postgresql"`` or ``"sqlite"``."""
        return POSTGRESQL if self.url is not None else SQLITE

    @property
    def is_postgres(self) -> bool:
        return self.url is not None

    @property
    def in_memory(self) -> bool:
        return self.url is None and self.path is None

    def display(self) -> str:
        """The location as shown to people and stored in the audit log and reports: the file
        path, ``:memory:``, or the URL with its password masked."""
        if self.url is not None:
            url = self.url
            if "password" in url.query:
                url = url.update_query_dict({"password": "***"})
            return url.render_as_string(hide_password=True)
        return MEMORY if self.path is None else str(self.path)

    def __str__(self) -> str:
        return self.display()

    def __repr__(self) -> str:
        return f"GalleryLocation({self.display()!r})"


def _postgres_url(text: str) -> URL:
    """``text`` as a PostgreSQL URL on the psycopg driver, with a database name."""
    scheme = text.split("://", 1)[0].lower()
    if scheme not in PG_SCHEMES:
        raise GalleryLocationError(
            f"--db {scheme}://...: a gallery is a file path (SQLite) or a PostgreSQL URL "
            "(postgresql://user@host:port/dbname, postgresql+psycopg://..., or "
            "postgresql://user@/dbname?host=/socket/dir); other databases are not supported")
    try:
        url = make_url(text)
    except ArgumentError as exc:
        raise GalleryLocationError(f"--db: not a valid PostgreSQL URL ({_masked_reason(exc, text)})") from None
    if not url.database:
        raise GalleryLocationError(
            f"--db {url.render_as_string(hide_password=True)}: the URL names no database "
            "(postgresql://user@host:port/dbname)")
    return url.set(drivername=PG_DRIVER)


def _masked_reason(exc: Exception, text: str) -> str:
    """The parser's complaint without the URL in it (it may hold a password)."""
    return str(exc).replace(text, "<the URL>")


__all__ = ["GalleryLocation", "MEMORY", "PG_DRIVER", "POSTGRESQL", "SQLITE"]
