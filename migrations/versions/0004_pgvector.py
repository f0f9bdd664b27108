"""Vectors in pgvector on PostgreSQL (vector_spaces, space_vectors); nothing on SQLite.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 00:00:00

On PostgreSQL a gallery's vectors are searched in the database (:mod:`gallery.pgvector`): each
search space (the stored descriptors, and the derived whitened and round-trip spaces) is a row of
``vector_spaces``; its vectors are rows of ``space_vectors`` keyed by (space, embedding id), removed
with their embedding (ON DELETE CASCADE). A space's HNSW index (cosine) is partial, on
``v::vector(dim)``, made with the space's row (once the embedder's dimension is known) and dropped
with it, by a trigger. On SQLite
the vectors are the FAISS files beside the database, and this revision changes nothing.
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: Union[str, Sequence[str], None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


#: A space's HNSW index is made with its row and dropped with it, by this trigger function, which
#: runs with its owner's rights (SECURITY DEFINER): only a table's owner may index it, and the
#: role that enrolls (forensics_admin) is not the owner. A trigger function cannot be called
#: otherwise, so no role can make or drop an index but by adding or deleting a space's row.
SPACE_INDEX_FUNCTION = """
CREATE FUNCTION forensics_space_index() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        EXECUTE format('CREATE INDEX %I ON space_vectors USING hnsw ((v::vector(%s)) vector_cosine_ops) '
                       'WHERE space_id = %s', 'space_vectors_hnsw_' || NEW.id, NEW.dim, NEW.id);
        RETURN NEW;
    END IF;
    EXECUTE format('DROP INDEX IF EXISTS %I', 'space_vectors_hnsw_' || OLD.id);
    RETURN OLD;
END
$$"""


def _postgres() -> bool:
    return op.get_context().dialect.name == "postgresql"


def upgrade() -> None:
    if not _postgres():
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table(
        "vector_spaces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("space", sa.Text(), nullable=True),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("embedder_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("dim > 0", name="ck_vector_spaces_dim"),
        sa.ForeignKeyConstraint(["embedder_id"], ["embedders.id"], name="fk_vector_spaces_embedder_id_embedders"),
        sa.PrimaryKeyConstraint("id", name="pk_vector_spaces"),
        sa.UniqueConstraint("name", name="uq_vector_spaces_name"),
    )
    op.execute("""
        CREATE TABLE space_vectors (
            space_id integer NOT NULL
                CONSTRAINT fk_space_vectors_space_id_vector_spaces REFERENCES vector_spaces (id) ON DELETE CASCADE,
            embedding_id integer NOT NULL
                CONSTRAINT fk_space_vectors_embedding_id_embeddings REFERENCES embeddings (id) ON DELETE CASCADE,
            v vector NOT NULL,
            CONSTRAINT pk_space_vectors PRIMARY KEY (space_id, embedding_id)
        )""")
    op.create_index("ix_space_vectors_embedding_id", "space_vectors", ["embedding_id"])
    op.execute(SPACE_INDEX_FUNCTION)
    op.execute("CREATE TRIGGER vector_spaces_index AFTER INSERT OR DELETE ON vector_spaces "
               "FOR EACH ROW EXECUTE FUNCTION forensics_space_index()")


def downgrade() -> None:
    if not _postgres():
        return
    op.drop_table("space_vectors")  # with the spaces' HNSW indexes
    op.drop_table("vector_spaces")  # with its trigger
    op.execute("DROP FUNCTION forensics_space_index()")
