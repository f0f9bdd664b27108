"""Plain, detached value objects passed in and out of :class:`gallery.repository.GalleryRepository`.

They hold copies of database rows (no lazy loading, safe after the session is closed) or
describe what to write.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Optional, Sequence

import numpy as np


class EmbedderKey(NamedTuple):
    """What makes two sets of vectors comparable: the embedder's name, version and dimension."""

    name: str
    version: str
    dim: int

    def __str__(self) -> str:
        return f"{self.name}@{self.version} (dim {self.dim})"

    @property
    def slug(self) -> str:
        """``name@version/dim``: the form the fitted-parameter files (whitening, fusion,
        calibration) record the embedder they were fitted for in."""
        return f"{self.name}@{self.version}/{self.dim}"

    def as_dict(self) -> dict[str, Any]:
        """``{"name", "version", "dim"}`` (the form stored in the index sidecar)."""
        return {"name": self.name, "version": self.version, "dim": int(self.dim)}

    @classmethod
    def coerce(cls, value: Any) -> "EmbedderKey":
        """An EmbedderKey from an EmbedderKey/EmbedderInfo/ORM Embedder, a dict or a 3-tuple."""
        if isinstance(value, EmbedderKey):
            return value
        if isinstance(value, dict):
            return cls(str(value["name"]), str(value["version"]), int(value["dim"]))
        if all(hasattr(value, a) for a in ("name", "version", "dim")):
            return cls(str(value.name), str(value.version), int(value.dim))
        name, version, dim = value
        return cls(str(name), str(version), int(dim))


@dataclass(frozen=True)
class EmbedderInfo:
    """Which network produced a vector (vectors of different embedders are never compared): model
    name/version, vector dim and weights SHA-256; ``id`` is its ``embedders`` row in a gallery
    database (None for an embedder described by the model registry, not read from a gallery)."""

    name: str
    version: str
    dim: int
    weights_sha256: Optional[str] = None
    id: Optional[int] = None

    @property
    def key(self) -> EmbedderKey:
        """The (name, version, dim) key the FAISS index is tied to."""
        return EmbedderKey(self.name, self.version, self.dim)

    def __str__(self) -> str:
        return str(self.key)


@dataclass(frozen=True)
class ImageSpec:
    """An image to enroll: SHA-256 of its bytes (64 lowercase hex) and where it came from."""

    sha256: str
    original_path: Optional[str] = None
    width: Optional[int] = None
    height: Optional[int] = None
    size_bytes: Optional[int] = None
    source: Optional[str] = None
    #: how many faces the detector found in the image (default: the number of faces enrolled)
    n_faces_detected: Optional[int] = None


@dataclass
class FaceSpec:
    """A face to enroll with its embedding.

    ``box`` = [x1, y1, x2, y2] pixels; ``landmarks`` = 5 (x, y) points or None; ``det_score``
    the detector confidence; ``chip_png`` the aligned chip as PNG bytes (``chip_size`` square);
    ``vector`` the embedding (any float array of length ``embedder.dim``; it is L2-normalised and
    stored as float32); ``embedder`` an EmbedderInfo or embedder id.
    """

    box: Sequence[float]
    landmarks: Optional[Any]
    det_score: Optional[float]
    chip_png: Optional[bytes]
    vector: np.ndarray
    embedder: Any = None
    chip_size: Optional[int] = 150


@dataclass(frozen=True)
class EnrollmentResult:
    """What one enrollment wrote: the subject/image ids, new face ids and embedding ids."""

    subject_id: int
    external_id: str
    image_id: int
    image_sha256: str
    face_ids: tuple[int, ...]
    embedding_ids: tuple[int, ...]
    subject_created: bool


@dataclass(frozen=True)
class ImageInfo:
    """An ``images`` row (without the faces)."""

    id: int
    sha256: str
    original_path: Optional[str]
    width: Optional[int]
    height: Optional[int]
    size_bytes: Optional[int]
    source: Optional[str]
    n_faces: int
    enrolled_at: Optional[_dt.datetime]


@dataclass(frozen=True)
class SubjectInfo:
    """A ``subjects`` row with counts of its images, faces and embeddings.

    ``images`` is filled by :meth:`GalleryRepository.get_subject` only (empty in listings).
    """

    id: int
    external_id: str
    name: Optional[str]
    sex: Optional[str]
    birth_year: Optional[int]
    meta: dict[str, Any]
    created_at: Optional[_dt.datetime]
    n_images: int = 0
    n_faces: int = 0
    n_embeddings: int = 0
    images: tuple[ImageInfo, ...] = ()


@dataclass(frozen=True)
class RemovedSubject:
    """What :meth:`GalleryRepository.remove_subject` deleted: remove ``embedding_ids`` from the
    FAISS index; ``image_sha256s`` name the images that were enrolled."""

    external_id: str
    subject_id: int
    embedding_ids: tuple[int, ...]
    image_sha256s: tuple[str, ...]
    n_faces: int


class Owner(NamedTuple):
    """Who an embedding belongs to: the subject, image and face behind a FAISS hit.

    The first six fields are (subject external id, subject name, subject db id, image sha256,
    image id, face id); then the subject's ``sex``, ``birth_year``, ``meta`` (for filtering) and
    the ``embedding_id`` itself.
    """

    external_id: str
    name: Optional[str]
    subject_id: int
    image_sha256: str
    image_id: int
    face_id: int
    sex: Optional[str]
    birth_year: Optional[int]
    meta: dict[str, Any]
    embedding_id: int


@dataclass
class QueryInputSpec:
    """One probe of a query to store (see :class:`gallery.models.QueryInput`)."""

    sha256: Optional[str] = None
    original_path: Optional[str] = None
    aligned_png: Optional[bytes] = None
    synthesized_png: Optional[bytes] = None
    landmarks: Any = None
    detection: Any = None
    position: Optional[int] = None


@dataclass
class QueryCandidateSpec:
    """One ranked candidate of a query to store (see :class:`gallery.models.QueryCandidate`).

    When ``subject_id`` is None it is looked up from ``subject_external_id``.
    """

    rank: int
    score: float
    subject_external_id: Optional[str] = None
    subject_name: Optional[str] = None
    image_sha256: Optional[str] = None
    subject_id: Optional[int] = None
    score_detail: Any = None


@dataclass(frozen=True)
class QueryInputRecord:
    """A stored probe of a query."""

    position: int
    sha256: Optional[str]
    original_path: Optional[str]
    aligned_png: Optional[bytes]
    synthesized_png: Optional[bytes]
    landmarks: Any
    detection: Any


@dataclass(frozen=True)
class QueryCandidateRecord:
    """A stored ranked candidate (``subject_id`` is None once the subject was removed)."""

    rank: int
    subject_id: Optional[int]
    subject_external_id: Optional[str]
    subject_name: Optional[str]
    image_sha256: Optional[str]
    score: float
    score_detail: Any


@dataclass(frozen=True)
class QueryRecord:
    """A stored query with its probes and candidates (all the fields of ``queries``)."""

    id: int
    query_uid: str
    created_at: _dt.datetime
    case_id: Optional[str]
    operator: Optional[str]
    mode: Optional[str]
    params: Any
    embedder: Optional[EmbedderInfo]
    inverter: Any
    gallery_size: Optional[int]
    gallery_fingerprint: Optional[str]
    timings: Any
    tool_version: Optional[str]
    filters: Any
    inputs: tuple[QueryInputRecord, ...] = field(default_factory=tuple)
    candidates: tuple[QueryCandidateRecord, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class QuerySummary:
    """One line of :meth:`GalleryRepository.list_queries` (newest first)."""

    query_uid: str
    created_at: _dt.datetime
    case_id: Optional[str]
    operator: Optional[str]
    mode: Optional[str]
    n_inputs: int
    n_candidates: int
    top_external_id: Optional[str]
    top_score: Optional[float]
    gallery_size: Optional[int]


@dataclass(frozen=True)
class ReviewRecord:
    """A ``reviews`` row: an examiner's decision on candidate ``candidate_rank`` of a stored
    query; ``verifies_uid`` names the review a second examiner confirmed (None: a decision)."""

    review_uid: str
    query_uid: str
    candidate_rank: int
    decision: str
    note: Optional[str]
    examiner: str
    created_at: Optional[_dt.datetime]
    verifies_uid: Optional[str] = None
