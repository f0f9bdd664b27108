"""Core gallery tables: embedders, subjects, images, faces, embeddings, gallery_meta.

Revision ID: 0001
Revises:
Create Date: 2024-06-01 00:00:00

Written by hand, with the types frozen here (migrations never import application types).
JSON columns are TEXT holding canonical JSON; timestamps are ISO 8601 UTC TEXT.

Runs on SQLite and PostgreSQL: the hex check of an image hash is a GLOB on SQLite and a regular
expression on PostgreSQL; a SQLite file is marked as a gallery by ``PRAGMA application_id``, a
PostgreSQL database by a comment on ``gallery_meta`` (:data:`PG_MARKER`).
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

#: SQLite PRAGMA application_id marking the file as a forensics gallery ("FRNS").
APPLICATION_ID = 0x46524E53
#: The comment on ``gallery_meta`` marking a PostgreSQL database as a forensics gallery.
PG_MARKER = "forensics gallery (application id 0x46524e53)"


def _postgres() -> bool:
    return op.get_context().dialect.name == "postgresql"


def _sha256_hex_check() -> str:
    """The SQL condition that ``sha256`` is 64 lowercase hex characters, in this dialect."""
    if _postgres():
        return "sha256 ~ '^[0-9a-f]{64}$'"
    return "length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'"


def _create_embedders() -> None:
    """The embedders table."""
    op.create_table(
        "embedders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("weights_sha256", sa.String(64), nullable=True),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_embedders"),
        sa.UniqueConstraint("name", "version", name="uq_embedders_name_version"),
        sa.CheckConstraint("dim > 0", name="ck_embedders_dim_positive"),
    )


def _create_subjects() -> None:
    """The subjects table."""
    op.create_table(
        "subjects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("name", sa.String(400), nullable=True),
        sa.Column("sex", sa.String(20), nullable=True),
        sa.Column("birth_year", sa.Integer(), nullable=True),
        sa.Column("meta", sa.Text(), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_subjects"),
        sa.UniqueConstraint("external_id", name="uq_subjects_external_id"),
    )


def _create_images() -> None:
    """The images table and its indexes."""
    op.create_table(
        "images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("original_path", sa.Text(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(200), nullable=True),
        sa.Column("n_faces", sa.Integer(), nullable=False),
        sa.Column("enrolled_at", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_images"),
        sa.ForeignKeyConstraint(
            ["subject_id"], ["subjects.id"], name="fk_images_subject_id_subjects", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("sha256", name="uq_images_sha256"),
        sa.CheckConstraint(_sha256_hex_check(), name="ck_images_sha256_hex"),
        sa.CheckConstraint("n_faces >= 0", name="ck_images_n_faces_nonneg"),
    )
    op.create_index("ix_images_subject_id", "images", ["subject_id"])


def _create_faces() -> None:
    """The faces table and its indexes."""
    op.create_table(
        "faces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("box", sa.Text(), nullable=False),
        sa.Column("landmarks", sa.Text(), nullable=True),
        sa.Column("det_score", sa.Float(), nullable=True),
        sa.Column("chip_png", sa.LargeBinary(), nullable=True),
        sa.Column("chip_size", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_faces"),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name="fk_faces_image_id_images", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_faces_image_id", "faces", ["image_id"])


def _create_embeddings() -> None:
    """The embeddings table and its indexes."""
    op.create_table(
        "embeddings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("face_id", sa.Integer(), nullable=False),
        sa.Column("embedder_id", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_embeddings"),
        sa.ForeignKeyConstraint(
            ["face_id"], ["faces.id"], name="fk_embeddings_face_id_faces", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["embedder_id"], ["embedders.id"], name="fk_embeddings_embedder_id_embedders"
        ),
        sa.UniqueConstraint("face_id", "embedder_id", name="uq_embeddings_face_id_embedder_id"),
        sa.CheckConstraint(
            "length(vector) > 0 AND length(vector) % 4 = 0", name="ck_embeddings_vector_f32"
        ),
    )
    op.create_index("ix_embeddings_face_id", "embeddings", ["face_id"])
    op.create_index("ix_embeddings_embedder_id", "embeddings", ["embedder_id"])


def _create_gallery_meta() -> None:
    """The gallery_meta table."""
    op.create_table(
        "gallery_meta",
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("key", name="pk_gallery_meta"),
    )


def upgrade() -> None:
    _create_embedders()
    _create_subjects()
    _create_images()
    _create_faces()
    _create_embeddings()
    _create_gallery_meta()
    if _postgres():
        op.execute(f"COMMENT ON TABLE gallery_meta IS '{PG_MARKER}'")
    else:
        op.execute(f"PRAGMA application_id = {APPLICATION_ID}")


def downgrade() -> None:
    op.drop_table("gallery_meta")
    op.drop_index("ix_embeddings_embedder_id", table_name="embeddings")
    op.drop_index("ix_embeddings_face_id", table_name="embeddings")
    op.drop_table("embeddings")
    op.drop_index("ix_faces_image_id", table_name="faces")
    op.drop_table("faces")
    op.drop_index("ix_images_subject_id", table_name="images")
    op.drop_table("images")
    op.drop_table("subjects")
    op.drop_table("embedders")
    if not _postgres():
        op.execute("PRAGMA application_id = 0")
