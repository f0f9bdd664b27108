"""Examiner reviews of stored queries' candidates (reviews).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 00:00:00

Reviews are only added (a later one supersedes); each is sealed by its ``review`` audit event.
On PostgreSQL triggers refuse UPDATE, DELETE and TRUNCATE of ``reviews`` (as revision 0002 does
for the stored queries).
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

from migrations.append_only import drop_pg_append_only_triggers, pg_append_only_triggers

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("review_uid", sa.String(64), nullable=False),
        sa.Column("query_id", sa.Integer(), nullable=False),
        sa.Column("candidate_rank", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("examiner", sa.String(200), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("verifies_uid", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(["query_id"], ["queries.id"], name="fk_reviews_query_id_queries", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_reviews"),
        sa.UniqueConstraint("review_uid", name="uq_reviews_review_uid"),
    )
    op.create_index("ix_reviews_query_id", "reviews", ["query_id"])
    if _postgres():
        pg_append_only_triggers("reviews")


def _postgres() -> bool:
    return op.get_context().dialect.name == "postgresql"


def downgrade() -> None:
    if _postgres():
        drop_pg_append_only_triggers("reviews")
    op.drop_index("ix_reviews_query_id", table_name="reviews")
    op.drop_table("reviews")
