"""Gallery storage for forensics: the database (source of truth: a SQLite file, or a PostgreSQL
database), the derived FAISS index and the hash-chained audit log.

* :mod:`gallery.location`     ``GalleryLocation``: a SQLite file or a PostgreSQL URL (``--db``)
* :mod:`gallery.db`           ``open_gallery`` / ``init_gallery`` -> :class:`Gallery`
* :mod:`gallery.postgres`     what is particular to PostgreSQL (engine, marker, write lock)
* :mod:`gallery.pg_errors`    the PostgreSQL server's failures as errors naming the gallery
* :mod:`gallery.roles`        the PostgreSQL roles ``forensics_admin`` / ``forensics_examiner``
* :mod:`gallery.models`       SQLAlchemy models (subjects, images, faces, embeddings, queries...)
* :mod:`gallery.transaction`  ``read_transaction`` / ``write_transaction``: one transaction
  shared by several storage calls (repository and audit)
* :mod:`gallery.repository`   :class:`GalleryRepository`, the facade over
  :mod:`gallery.subjects`, :mod:`gallery.enrollment`, :mod:`gallery.vectors`, :mod:`gallery.queries`
* :mod:`gallery.index`        :class:`VectorIndex` (FAISS) and ``check_consistency``
* :mod:`gallery.audit`        ``append_event`` / ``verify_chain`` / ``export_events``
* :mod:`gallery.errors`       exceptions (all derive from :class:`GalleryError`)

Dependencies run one way: ``roles`` -> ``db`` -> ``repository`` -> the per-concern modules ->
``transaction`` -> ``postgres`` -> ``models``; ``audit`` -> ``transaction``; ``db`` -> ``location``;
``postgres`` -> ``pg_errors`` -> ``location``.
"""

from .audit import AuditRecord, ChainProblem, VerifyResult, append_event, export_events, verify_chain
from .db import Gallery, head_revision, init_gallery, open_gallery
from .errors import (
    AuditError,
    DuplicateImageError,
    EmbedderMismatchError,
    EnrollmentError,
    GalleryError,
    GalleryNotFoundError,
    GalleryPermissionError,
    GalleryReadOnlyError,
    GalleryUnavailableError,
    GalleryVersionError,
    IndexCorruptError,
    NotAGalleryError,
    SubjectNotFoundError,
)
from .index import (
    IndexProblem,
    VectorIndex,
    check_consistency,
    load_or_build,
)
from .records import (
    EmbedderInfo,
    EmbedderKey,
    EnrollmentResult,
    FaceSpec,
    ImageInfo,
    ImageSpec,
    Owner,
    QueryCandidateSpec,
    QueryInputSpec,
    QueryRecord,
    QuerySummary,
    RemovedSubject,
    SubjectInfo,
)
from .repository import GalleryRepository
from .transaction import read_transaction, write_transaction

__all__ = [
    "AuditError",
    "AuditRecord",
    "ChainProblem",
    "DuplicateImageError",
    "EmbedderInfo",
    "EmbedderKey",
    "EmbedderMismatchError",
    "EnrollmentError",
    "EnrollmentResult",
    "FaceSpec",
    "Gallery",
    "GalleryError",
    "GalleryNotFoundError",
    "GalleryPermissionError",
    "GalleryReadOnlyError",
    "GalleryUnavailableError",
    "GalleryRepository",
    "GalleryVersionError",
    "ImageInfo",
    "ImageSpec",
    "IndexCorruptError",
    "IndexProblem",
    "NotAGalleryError",
    "Owner",
    "QueryCandidateSpec",
    "QueryInputSpec",
    "QueryRecord",
    "QuerySummary",
    "RemovedSubject",
    "SubjectInfo",
    "SubjectNotFoundError",
    "VectorIndex",
    "VerifyResult",
    "append_event",
    "check_consistency",
    "export_events",
    "head_revision",
    "init_gallery",
    "load_or_build",
    "open_gallery",
    "read_transaction",
    "verify_chain",
    "write_transaction",
]
