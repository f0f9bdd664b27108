"""Which vector store a gallery uses, chosen by its database, never by a flag: FAISS files beside
a SQLite gallery (`forensics.faiss_indexes`), pgvector inside a PostgreSQL one
(`forensics.pg_indexes`). Both are `forensics.indexes.GalleryIndexes`."""

from __future__ import annotations

from gallery.db import Gallery
from gallery.pgvector import is_postgres

from forensics.faiss_indexes import FaissIndexes
from forensics.indexes import GalleryIndexes
from forensics.pg_indexes import PgIndexes


def open_indexes(gallery: Gallery) -> GalleryIndexes:
    """The derived indexes of `gallery`, in the store its database calls for."""
    return PgIndexes(gallery) if is_postgres(gallery) else FaissIndexes(gallery)
