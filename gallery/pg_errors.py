"""What a PostgreSQL server's failure means to the operator: the server unreachable, a login
refused, the connection lost mid-command, work it cannot do now (a read-only standby, a statement
timeout, a full disk, a deadlock), a database role without the right. Each becomes a
:class:`GalleryError` of one line naming the gallery (password masked) and what to do, raised in
place of the driver's error by the engine itself (:func:`name_server_errors`), so that every
command and every storage call on a PostgreSQL gallery reports them alike. The password is masked
in the driver's own text too, should it ever appear there.

A refusal of another kind (a unique constraint, an append-only trigger) stays the driver's error:
the storage modules handle those themselves.
"""

from __future__ import annotations

import re
from typing import Optional

import psycopg
from sqlalchemy import event
from sqlalchemy.engine import Engine, ExceptionContext

from .errors import GalleryError, GalleryPermissionError, GalleryUnavailableError
from .location import GalleryLocation

#: SQLSTATE of a statement the role lacks the right to run (``permission denied``, ``must be owner``).
INSUFFICIENT_PRIVILEGE = "42501"
#: SQLSTATE prefixes of a connection lost: connection exceptions; the server shut down, crashed or
#: ended the connection (``57P``: not ``57014``, a statement cancelled).
LOST_STATES = ("08", "57P")
#: SQLSTATEs (or their prefixes) of work the server cannot do now, and what to do about it.
CANNOT_NOW = (
    ("25006", "the server lets no one write this database (a standby, or default_transaction_read_only): give "
              "--db the primary server"),
    ("57014", "the server cancelled the statement (its statement_timeout, or an administrator): run the command "
              "again, or ask the database administrator about the time limit"),
    ("53", "the server is short of disk, memory or connections: ask the database administrator"),
    ("40", "the server rolled the transaction back (a deadlock or a conflict with another writer): run the "
           "command again"),
)
ROLE_ADVICE = ("enrolling, removing subjects, changing settings and rebuilding indexes need a login in the "
               "forensics_admin group; creating, upgrading or copying into a gallery and creating its roles, "
               "the database owner (docs/deployment.md, sections 1 and 3)")
LOST_ADVICE = ("nothing the command had not committed was kept (the server rolls it back); once the server is "
               "running, run the command again: what was committed stays (an enrollment skips the images it "
               "already stored, a round-trip run the faces it already computed)")
#: Why a connection could not be made, by the server's or libpq's words, and what to do about it.
CONNECT_ADVICE = (
    (("permission denied",),
     "ask the database administrator to grant this login CONNECT on the database"),
    (("password authentication failed", "authentication failed", "no pg_hba.conf entry", "role \""),
     "check the user name and its password (in ~/.pgpass or $PGPASSWORD, never in --db), or ask the database "
     "administrator for a login"),
    (("database \"",),
     "check the database name in --db, or create the database (docs/deployment.md, section 1)"),
    (("too many clients", "too many connections", "remaining connection slots"),
     "the server has no free connection: run the command again shortly, or ask the database administrator"),
    (("the database system is starting up", "the database system is shutting down"),
     "the server is starting or stopping: run the command again shortly"),
)
UNREACHABLE_ADVICE = ("check the host, port or socket folder in --db, and that the server is running and reachable; "
                      "then run the command again")


def name_server_errors(engine: Engine, location: GalleryLocation) -> None:
    """Make ``engine`` raise the errors of the module in place of the driver's."""

    @event.listens_for(engine, "handle_error")
    def _named(context: ExceptionContext) -> Optional[BaseException]:
        if context.is_pre_ping:  # the pool replaces a dropped connection itself
            return None
        return server_error(location, context.original_exception, context.is_disconnect,
                            connecting=context.connection is None)


def server_error(location: GalleryLocation, exc: BaseException, lost: bool, *,
                 connecting: bool) -> Optional[GalleryError]:
    """The :class:`GalleryError` that ``exc`` (the driver's error) means for ``location``, or None
    when it is not a failure of the server or of the role's rights."""
    if not isinstance(exc, psycopg.Error):
        return None
    label = location.display()
    diag = getattr(exc, "diag", None)  # a server's error: its primary message, without the statement's context
    reason = one_line((diag.message_primary if diag is not None else None) or str(exc), location)
    state = getattr(exc, "sqlstate", None) or ""
    if state == INSUFFICIENT_PRIVILEGE:
        return GalleryPermissionError(f"the PostgreSQL gallery {label} refused this database role: {reason} — "
                                      f"{ROLE_ADVICE}")
    if connecting and isinstance(exc, psycopg.OperationalError):
        return GalleryUnavailableError(f"cannot open the PostgreSQL gallery {label}: {reason} — "
                                       f"{connect_advice(reason)}")
    if lost or state.startswith(LOST_STATES):
        return GalleryUnavailableError(f"the connection to the PostgreSQL gallery {label} was lost mid-command "
                                       f"({reason}): {LOST_ADVICE}")
    advice = next((advice for prefix, advice in CANNOT_NOW if state.startswith(prefix)), None)
    if advice is not None:
        return GalleryUnavailableError(f"the PostgreSQL gallery {label} could not do it: {reason} — {advice}; "
                                       "nothing the command had not committed was kept")
    return None


def connect_advice(reason: str) -> str:
    """What to do when a connection could not be made for ``reason`` (the driver's words)."""
    for words, advice in CONNECT_ADVICE:
        if any(w in reason for w in words):
            return advice
    return UNREACHABLE_ADVICE


def one_line(text: str, location: GalleryLocation) -> str:
    """The driver's message on one line, the connection's password (in the URL's user part or its
    ``password`` parameter) masked."""
    url = location.url
    if url is not None:
        given = url.query.get("password")
        for password in (url.password, *(given if isinstance(given, tuple) else (given,))):
            if password:
                text = text.replace(str(password), "***")
    return re.sub(r"\s+", " ", text).strip()


__all__ = ["INSUFFICIENT_PRIVILEGE", "name_server_errors", "server_error"]
