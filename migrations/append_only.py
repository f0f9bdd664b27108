"""PostgreSQL triggers making a table append-only, shared by the migrations that create such
tables (0002: audit and stored queries, 0003: reviews). The trigger functions they call are
created by revision 0002."""

from __future__ import annotations

from alembic import op


def pg_append_only_triggers(table: str, unlink_only: bool = False) -> None:
    """PostgreSQL: the triggers refusing UPDATE (or, with ``unlink_only``, any UPDATE but a
    removal's unlinking), DELETE and TRUNCATE on ``table`` (functions of revision 0002)."""
    on_update = "forensics_unlink_only" if unlink_only else "forensics_append_only"
    op.execute(f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
               f"FOR EACH ROW EXECUTE FUNCTION {on_update}()")
    op.execute(f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
               "FOR EACH ROW EXECUTE FUNCTION forensics_append_only()")
    op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
               "FOR EACH STATEMENT EXECUTE FUNCTION forensics_append_only()")


def drop_pg_append_only_triggers(table: str) -> None:
    """PostgreSQL: the triggers of :func:`pg_append_only_triggers` on ``table`` dropped."""
    for what in ("update", "delete", "truncate"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{what} ON {table}")
