"""Stored sketch queries (queries, query_inputs, query_candidates) and the audit log.

Revision ID: 0002
Revises: 0001
Create Date: 2024-06-15 00:00:00

``audit_events`` is append-only: triggers refuse UPDATE and DELETE, and each row carries
``hash = sha256(prev_hash + canonical JSON of its fields)`` (see gallery/audit.py).

On PostgreSQL the stored queries are append-only as well, by triggers calling plpgsql functions
that raise whoever runs the statement (the table's owner included): ``queries`` and
``query_inputs`` refuse UPDATE, DELETE and TRUNCATE; ``query_candidates`` refuses them too except
the one UPDATE removing a subject makes (its link, external id and name set to null, nothing else
changed); ``audit_events`` also refuses TRUNCATE.
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

from migrations.append_only import drop_pg_append_only_triggers, pg_append_only_triggers

revision: str = "0002"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _create_queries() -> None:
    """The queries table and its indexes."""
    op.create_table(
        "queries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("query_uid", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("case_id", sa.String(200), nullable=True),
        sa.Column("operator", sa.String(200), nullable=True),
        sa.Column("mode", sa.String(50), nullable=True),
        sa.Column("params", sa.Text(), nullable=True),
        sa.Column("embedder_id", sa.Integer(), nullable=True),
        sa.Column("inverter", sa.Text(), nullable=True),
        sa.Column("gallery_size", sa.Integer(), nullable=True),
        sa.Column("gallery_fingerprint", sa.String(64), nullable=True),
        sa.Column("timings", sa.Text(), nullable=True),
        sa.Column("tool_version", sa.String(100), nullable=True),
        sa.Column("filters", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_queries"),
        sa.ForeignKeyConstraint(
            ["embedder_id"],
            ["embedders.id"],
            name="fk_queries_embedder_id_embedders",
            ondelete="SET NULL",
        ),
        sa.UniqueConstraint("query_uid", name="uq_queries_query_uid"),
    )
    op.create_index("ix_queries_created_at", "queries", ["created_at"])
    op.create_index("ix_queries_case_id", "queries", ["case_id"])


def _create_query_inputs() -> None:
    """The query_inputs table and its indexes."""
    op.create_table(
        "query_inputs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("query_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("original_path", sa.Text(), nullable=True),
        sa.Column("aligned_png", sa.LargeBinary(), nullable=True),
        sa.Column("synthesized_png", sa.LargeBinary(), nullable=True),
        sa.Column("landmarks", sa.Text(), nullable=True),
        sa.Column("detection", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_query_inputs"),
        sa.ForeignKeyConstraint(
            ["query_id"], ["queries.id"], name="fk_query_inputs_query_id_queries", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("query_id", "position", name="uq_query_inputs_query_id_position"),
    )
    op.create_index("ix_query_inputs_query_id", "query_inputs", ["query_id"])


def _create_query_candidates() -> None:
    """The query_candidates table and its indexes."""
    op.create_table(
        "query_candidates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("query_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=True),
        sa.Column("subject_external_id", sa.String(200), nullable=True),
        sa.Column("subject_name", sa.String(400), nullable=True),
        sa.Column("image_sha256", sa.String(64), nullable=True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("score_detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_query_candidates"),
        sa.ForeignKeyConstraint(
            ["query_id"],
            ["queries.id"],
            name="fk_query_candidates_query_id_queries",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["subjects.id"],
            name="fk_query_candidates_subject_id_subjects",
            ondelete="SET NULL",
        ),
        sa.UniqueConstraint("query_id", "rank", name="uq_query_candidates_query_id_rank"),
    )
    op.create_index("ix_query_candidates_query_id", "query_candidates", ["query_id"])
    op.create_index("ix_query_candidates_subject_id", "query_candidates", ["subject_id"])


def _create_audit_events() -> None:
    """The audit_events table and its indexes."""
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("ts", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("target", sa.Text(), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("input_hashes", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(200), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
        sa.UniqueConstraint("prev_hash", name="uq_audit_events_prev_hash"),
        sa.UniqueConstraint("hash", name="uq_audit_events_hash"),
    )
    op.create_index("ix_audit_events_action", "audit_events", ["action"])
    op.create_index("ix_audit_events_ts", "audit_events", ["ts"])


def _create_audit_triggers() -> None:
    """The triggers that make audit_events append-only."""
    op.execute(
        "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
        "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
    )
    op.execute(
        "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
        "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
    )


#: The tables made append-only on PostgreSQL, and the one whose rows a removal may unlink.
PG_APPEND_ONLY = ("audit_events", "queries", "query_inputs", "query_candidates")
UNLINKABLE = "query_candidates"
#: The columns a subject's removal sets to null in ``query_candidates``.
UNLINKED_COLUMNS = ("subject_id", "subject_external_id", "subject_name")

_PG_APPEND_ONLY_FUNCTION = """
CREATE FUNCTION forensics_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END
$$"""

_PG_UNLINK_ONLY_FUNCTION = """
CREATE FUNCTION forensics_unlink_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (to_jsonb(NEW) - ARRAY[{cols}]) = (to_jsonb(OLD) - ARRAY[{cols}])
       AND (NEW.subject_id IS NULL OR NEW.subject_id = OLD.subject_id)
       AND (NEW.subject_external_id IS NULL OR NEW.subject_external_id = OLD.subject_external_id)
       AND (NEW.subject_name IS NULL OR NEW.subject_name = OLD.subject_name) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% is append-only (a removal may only unlink the subject)', TG_TABLE_NAME;
END
$$""".format(cols=", ".join(f"'{c}'" for c in UNLINKED_COLUMNS))


def _create_pg_triggers() -> None:
    """PostgreSQL: the append-only triggers of this revision's tables."""
    op.execute(_PG_APPEND_ONLY_FUNCTION)
    op.execute(_PG_UNLINK_ONLY_FUNCTION)
    for table in PG_APPEND_ONLY:
        pg_append_only_triggers(table, unlink_only=table == UNLINKABLE)


def _postgres() -> bool:
    return op.get_context().dialect.name == "postgresql"


def upgrade() -> None:
    _create_queries()
    _create_query_inputs()
    _create_query_candidates()
    _create_audit_events()
    if _postgres():
        _create_pg_triggers()
    else:
        _create_audit_triggers()


def downgrade() -> None:
    if _postgres():
        for table in PG_APPEND_ONLY:
            drop_pg_append_only_triggers(table)
        op.execute("DROP FUNCTION IF EXISTS forensics_unlink_only()")
        op.execute("DROP FUNCTION IF EXISTS forensics_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
    op.drop_index("ix_audit_events_ts", table_name="audit_events")
    op.drop_index("ix_audit_events_action", table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_index("ix_query_candidates_subject_id", table_name="query_candidates")
    op.drop_index("ix_query_candidates_query_id", table_name="query_candidates")
    op.drop_table("query_candidates")
    op.drop_index("ix_query_inputs_query_id", table_name="query_inputs")
    op.drop_table("query_inputs")
    op.drop_index("ix_queries_case_id", table_name="queries")
    op.drop_index("ix_queries_created_at", table_name="queries")
    op.drop_table("queries")
