"""The operations the application needs on a gallery database, in one facade.

``GalleryRepository(gallery)`` runs every call in its own transaction (writes with
``BEGIN IMMEDIATE``, so concurrent writers queue on the busy timeout instead of failing).
``GalleryRepository(session)`` uses the caller's session and transaction instead: writes go
inside a SAVEPOINT (so each call is still all-or-nothing) and the caller commits (see
:mod:`gallery.transaction`).

Each concern has its own module; the facade is their union:

* :mod:`gallery.subjects`    upsert, list, get, remove subjects
* :mod:`gallery.enrollment`  enroll images (one batch path), known images
* :mod:`gallery.vectors`     embedders, vectors, chips, owners, fingerprint, counts
* :mod:`gallery.queries`     stored queries
* :mod:`gallery.reviews`     examiner reviews of stored queries' candidates

Results are detached value objects from :mod:`gallery.records`.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from .enrollment import EnrollmentStore
from .queries import QueryStore
from .reviews import ReviewStore
from .subjects import SubjectStore
from .transaction import read_transaction
from .vectors import VectorStore


class GalleryRepository(SubjectStore, EnrollmentStore, VectorStore, QueryStore, ReviewStore):
    """Subjects, enrollment, vectors, stored queries and their reviews of one gallery.

    ``source`` is a :class:`~gallery.db.Gallery` (each call is its own transaction) or an open
    SQLAlchemy ``Session`` (calls join the caller's transaction; writes use a SAVEPOINT).
    """

    @contextmanager
    def snapshot(self) -> Iterator["GalleryRepository"]:
        """A repository whose reads all see one consistent state of the database (one read
        transaction), e.g. to take a fingerprint and the vectors it describes together."""
        with read_transaction(self._source) as s:
            yield GalleryRepository(s)


__all__ = ["GalleryRepository"]
