"""Gallery storage for forensics: the SQLite database (source of truth), the derived FAISS
index and the hash-chained audit log.

* :mod:`gallery.db`          ``open_gallery`` / ``init_gallery`` -> :class:`Gallery`
* :mod:`gallery.models`      SQLAlchemy models (subjects, images, faces, embeddings, queries...)
* :mod:`gallery.repository`  :class:`GalleryRepository`: enrollment, listing, vectors, queries
* :mod:`gallery.index`       :class:`VectorIndex` (FAISS) and ``check_consistency``
* :mod:`gallery.audit`       ``append_event`` / ``verify_chain`` / ``export_events``
* :mod:`gallery.errors`      exceptions (all derive from :class:`GalleryError`)
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
    GalleryVersionError,
    IndexCorruptError,
    NotAGalleryError,
    QueryNotFoundError,
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
    "QueryNotFoundError",
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
    "verify_chain",
]
