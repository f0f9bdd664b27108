"""Exception classes of the gallery storage package.

Every error raised on purpose by :mod:`gallery` derives from :class:`GalleryError`, so callers
(the CLI) can catch that one class and print its message: the messages are written to be shown
to an operator as they are.
"""

from __future__ import annotations


class GalleryError(Exception):
    """Base class: something is wrong with the gallery database, its index or its use."""


class NotAGalleryError(GalleryError):
    """The file exists but is not SQLite, or is SQLite but not a forensics gallery."""


class GalleryLocationError(GalleryError, ValueError):
    """``--db`` names no place a gallery can live (e.g. a URL of a database other than PostgreSQL)."""


class GalleryNotFoundError(GalleryError):
    """No gallery at the given path and the caller asked not to create one."""


class GalleryReadOnlyError(GalleryError):
    """A write to a SQLite gallery whose file (or folder, or disk) cannot be written."""


class GalleryUnavailableError(GalleryError):
    """A PostgreSQL gallery's server cannot be reached, refused the login, was lost mid-command, or
    cannot do the work now (read-only, short of resources, a statement cancelled or rolled back)."""


class GalleryPermissionError(GalleryError):
    """The PostgreSQL server refused this database role the statement (e.g. an examiner enrolling)."""


class GalleryVersionError(GalleryError):
    """The database schema was written by a newer forensics version (unknown revision)."""


class EmbedderMismatchError(GalleryError):
    """Vectors from a different embedder (name, version or dimension) would be mixed or compared."""


class DuplicateImageError(GalleryError):
    """An image with the same SHA-256 is already enrolled."""

    def __init__(self, message: str, sha256: str | None = None) -> None:
        super().__init__(message)
        #: The SHA-256 (64 lowercase hex) of the image that is already in the gallery.
        self.sha256 = sha256


class SubjectNotFoundError(GalleryError, KeyError):
    """No subject with the given external id."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "subject not found"


class EnrollmentError(GalleryError):
    """The enrollment data is invalid (bad vector, bad box/landmarks, bad hash...)."""


class IndexCorruptError(GalleryError):
    """The FAISS index file or its JSON sidecar is missing, unreadable or does not match."""


class AuditError(GalleryError):
    """The audit log cannot be written or read as asked."""


__all__ = [
    "AuditError",
    "DuplicateImageError",
    "EmbedderMismatchError",
    "EnrollmentError",
    "GalleryError",
    "GalleryLocationError",
    "GalleryNotFoundError",
    "GalleryPermissionError",
    "GalleryUnavailableError",
    "GalleryVersionError",
    "IndexCorruptError",
    "NotAGalleryError",
    "SubjectNotFoundError",
]
