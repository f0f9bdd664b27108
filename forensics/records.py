"""Typed records passed across module boundaries."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from gallery.records import EmbedderInfo, EmbedderKey  # the one definition, shared with the gallery

__all__ = ["EmbedderInfo", "EmbedderKey", "Embedding", "FaceRecord", "Candidate", "SearchResult"]


@dataclass
class Embedding:
    """One L2-normalised face descriptor and the embedder that made it."""

    vector: np.ndarray  # (dim,) float32, unit length
    embedder: EmbedderInfo


@dataclass
class FaceRecord:
    """One input image after intake, detection, alignment and embedding."""

    path: Path
    sha256: str
    width: int
    height: int
    size_bytes: int
    n_faces: int
    box: list[float]
    landmarks: list[list[float]]
    det_score: float
    detection_method: str
    chip: np.ndarray  # (150,150,3) uint8
    embedding: Embedding
    chip_png: bytes | None = None  # the chip as PNG, when the pipeline was asked to encode it


@dataclass
class Candidate:
    """One ranked gallery subject returned by a search (its best-matching image)."""

    rank: int
    subject_id: str
    name: str | None
    score: float
    image_sha256: str
    image_id: int
    embedding_id: int
    sex: str | None = None
    birth_year: int | None = None
    fpir: float | None = None  # estimated false-positive identification rate at this score
    detail: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SearchResult:
    """A ranked candidate list and what produced it."""

    candidates: list[Candidate]
    embedder: EmbedderInfo
    gallery_size: int
    gallery_fingerprint: str
    probe_sha256: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
