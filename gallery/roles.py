"""The two roles of a PostgreSQL gallery, enforced by the database (``forensics gallery roles``).

* ``forensics_admin``: everything the tool does: enroll, remove subjects, rebuild indexes,
  search, query, report, review (SELECT, INSERT, UPDATE, DELETE on every table, the sequences).
* ``forensics_examiner``: search, query, report and review: reads everything, and adds only
  stored queries, reviews and audit events (INSERT on those tables, the sequences of their ids);
  no UPDATE or DELETE anywhere, so it cannot enroll, remove or alter. Appending an audit event
  also moves the chain's recorded head (``gallery_meta`` key ``audit_head``): row-level security
  on ``gallery_meta`` lets the examiner write that one row and no other.

Both are group roles (NOLOGIN); people log in as their own roles made members of one, e.g.
``CREATE ROLE jdoe LOGIN PASSWORD '...' IN ROLE forensics_examiner``. Neither owns a table, so
neither can change the schema or drop a trigger; the append-only triggers refuse UPDATE and
DELETE of the audit log, stored queries and reviews to everyone, the owner included. Migrations
(``forensics gallery init``) run as the owner. Running :func:`create_roles` again (after an
upgrade added tables) grants afresh; tables the owner creates later get the same rights by
default privileges.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .audit import HEAD_KEY
from .db import Gallery
from .errors import GalleryError
from .location import GalleryLocation

ADMIN = "forensics_admin"
EXAMINER = "forensics_examiner"
#: The tables an examiner adds rows to (a search, a stored query, a review, their audit events).
EXAMINER_APPENDS = ("queries", "query_inputs", "query_candidates", "reviews", "audit_events")
META = "gallery_meta"
ADMIN_TABLE_RIGHTS = "SELECT, INSERT, UPDATE, DELETE"


@dataclass(frozen=True)
class RoleGrant:
    """What one role may do in the gallery: read ``reads``, add to ``appends`` and change (update,
    delete) ``changes``; ``meta_rows``: the ``gallery_meta`` keys it may write (``*``: all)."""

    role: str
    reads: tuple[str, ...]
    appends: tuple[str, ...]
    changes: tuple[str, ...]
    meta_rows: str


def create_roles(gallery: Gallery) -> list[RoleGrant]:
    """Create (if missing) the admin and examiner roles and grant them their rights on every table
    and sequence of the gallery's schema; returns what each may do. PostgreSQL only; run as the
    owner of the tables (with the right to create roles)."""
    require_postgres(gallery.location)
    with gallery.engine.begin() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        tables = tuple(sorted(conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")).scalars()))
        q = conn.dialect.identifier_preparer.quote
        for role in (ADMIN, EXAMINER):
            _ensure_role(conn, role)
            _reset(conn, role, q(schema))
        _grant_admin(conn, q(schema))
        _grant_examiner(conn, q(schema))
        _meta_policies(conn)
    return [RoleGrant(ADMIN, tables, tables, tables, "*"),
            RoleGrant(EXAMINER, tables, EXAMINER_APPENDS, (), HEAD_KEY)]


def require_postgres(location: GalleryLocation) -> None:
    """A clear error unless ``location`` is a PostgreSQL gallery (the only kind with roles)."""
    if not location.is_postgres:
        raise GalleryError(f"{location.display()} is a SQLite file: roles are a PostgreSQL gallery's "
                           "(give --db postgresql://...); a file's rights are the file system's")


def _ensure_role(conn: Connection, role: str) -> None:
    exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
    if exists is None:
        conn.execute(text(f"CREATE ROLE {role} NOLOGIN"))


def _reset(conn: Connection, role: str, schema: str) -> None:
    """The role's rights on the schema's tables and sequences taken away, schema usage given."""
    conn.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role}"))
    conn.execute(text(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {role}"))
    conn.execute(text(f"GRANT USAGE ON SCHEMA {schema} TO {role}"))


def _grant_admin(conn: Connection, schema: str) -> None:
    conn.execute(text(f"GRANT {ADMIN_TABLE_RIGHTS} ON ALL TABLES IN SCHEMA {schema} TO {ADMIN}"))
    conn.execute(text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {ADMIN}"))
    conn.execute(text(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT {ADMIN_TABLE_RIGHTS} ON TABLES TO {ADMIN}"))
    conn.execute(text(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE, SELECT ON SEQUENCES TO {ADMIN}"))


def _grant_examiner(conn: Connection, schema: str) -> None:
    conn.execute(text(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {EXAMINER}"))
    conn.execute(text(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {EXAMINER}"))
    for table in EXAMINER_APPENDS:
        conn.execute(text(f"GRANT INSERT ON {table} TO {EXAMINER}"))
        seq = conn.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table}).scalar()
        if seq is not None:
            conn.execute(text(f"GRANT USAGE ON SEQUENCE {seq} TO {EXAMINER}"))
    conn.execute(text(f"GRANT INSERT, UPDATE ON {META} TO {EXAMINER}"))


def _meta_policies(conn: Connection) -> None:
    """Row-level security on ``gallery_meta``: everyone reads, the admin writes any row, the
    examiner only the audit head (the owner is not bound by it)."""
    conn.execute(text(f"ALTER TABLE {META} ENABLE ROW LEVEL SECURITY"))
    policies = {
        "gallery_meta_read": "FOR SELECT USING (true)",
        "gallery_meta_admin": f"FOR ALL TO {ADMIN} USING (true) WITH CHECK (true)",
        "gallery_meta_examiner_add_head": f"FOR INSERT TO {EXAMINER} WITH CHECK (key = '{HEAD_KEY}')",
        "gallery_meta_examiner_move_head": (f"FOR UPDATE TO {EXAMINER} USING (key = '{HEAD_KEY}') "
                                            f"WITH CHECK (key = '{HEAD_KEY}')"),
    }
    for name, rule in policies.items():
        conn.execute(text(f"DROP POLICY IF EXISTS {name} ON {META}"))
        conn.execute(text(f"CREATE POLICY {name} ON {META} {rule}"))


__all__ = ["ADMIN", "EXAMINER", "EXAMINER_APPENDS", "RoleGrant", "create_roles", "require_postgres"]
