"""Typed records passed across module boundaries."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from forensics.pose import PoseEstimate
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
    pose: PoseEstimate  # from `landmarks` (forensics.pose)
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


@dataclass
class QueryParams:
    """How a query searched: written by `forensics query`, stored with the query, read by reports.

    `search_space`: the sketch search space (`Whitening.describe()`), None for raw descriptors;
    `fusion`: the fusion offsets used (None: none applied or not a fusion mode);
    `fusion_weight_inverted`: the synthesized photo's share of the fusion score (None: no fusion);
    `roundtrip`: the round-trip score's description; `calibration`: the FPIR calibration used;
    `probes`: every probe searched (label, kind, index, weight), in the order of per-probe scores;
    `score_tail`: the exponential fit to this search's own scores the FPIR is measured on
    (`forensics.calibration.ScoreTail.describe()`; None: too few subjects searched, or stored
    before it was measured); `models`: every model and data file the search read, with its SHA-256
    (`forensics.provenance.ModelFile.to_dict()`: role, name, file, sha256); None in queries stored
    before it was recorded.
    """

    mode: str
    top: int
    n_sketches: int
    face_selection: str = "largest"
    mirror_averaged: bool = True
    search_space: dict | None = None
    fusion: dict | None = None
    fusion_weight_inverted: float | None = None
    roundtrip: dict | None = None
    calibration: dict | None = None
    probes: list[dict] = field(default_factory=list)
    subjects_searched: int | None = None  # after the subject filters; the FPIR is stated for this many
    models: list[dict] | None = None
    sketch_provenance: list[dict] | None = None  # per sketch: witness, artist, drawn_on, note
    score_tail: dict | None = None  # this search's own score tail (`ScoreTail.describe()`): its FPIR basis
    max_fpir: float | None = None  # `query --max-fpir`: candidates above it are stored but not shown

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "QueryParams":
        """The stored form back; queries stored before this record existed (the fusion weight
        inside `fusion`, the raw space as a sentence) are read too."""
        d = dict(d or {})
        fusion = d.get("fusion") if isinstance(d.get("fusion"), dict) else None
        weight = d.get("fusion_weight_inverted")
        if weight is None and fusion is not None:
            weight = fusion.get("weight_inverted")
        space = d.get("search_space")
        return cls(mode=str(d.get("mode", "")), top=int(d.get("top", 0)), n_sketches=int(d.get("n_sketches", 1)),
                   face_selection=str(d.get("face_selection", "largest")),
                   mirror_averaged=bool(d.get("mirror_averaged", False)),
                   search_space=space if isinstance(space, dict) else None, fusion=fusion,
                   fusion_weight_inverted=None if weight is None else float(weight),
                   roundtrip=d.get("roundtrip") if isinstance(d.get("roundtrip"), dict) else None,
                   calibration=d.get("calibration") if isinstance(d.get("calibration"), dict) else None,
                   probes=[p for p in d.get("probes") or [] if isinstance(p, dict)],
                   subjects_searched=d.get("subjects_searched") if isinstance(d.get("subjects_searched"), int) else None,
                   models=[m for m in d["models"] if isinstance(m, dict)] if isinstance(d.get("models"), list) else None,
                   sketch_provenance=[p if isinstance(p, dict) else {} for p in d["sketch_provenance"]]
                   if isinstance(d.get("sketch_provenance"), list) else None,
                   score_tail=d.get("score_tail") if isinstance(d.get("score_tail"), dict) else None,
                   max_fpir=float(d["max_fpir"]) if isinstance(d.get("max_fpir"), (int, float)) else None)
