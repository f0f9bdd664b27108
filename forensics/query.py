"""Sketch query: detect and align each sketch, invert it, embed both, search, fuse, rank, store.

Several sketches of one suspect (several witnesses) are fused into one candidate list: every
probe vector (each sketch's raw embedding and its synthesized photo's embedding, moved by the
fusion offsets: see forensics/fusion.py) scores every retrieved subject, and the subject's score
is the weighted mean.
Every query is stored in the gallery DB with everything needed to reproduce and report it, and
an audit event is appended.
"""

from __future__ import annotations

import dataclasses
import getpass
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gallery import audit
from gallery.db import Gallery
from gallery.records import QueryCandidateSpec, QueryInputSpec

from forensics import __version__
from forensics.errors import ForensicsError
from forensics.fusion import FUSION_WEIGHT_INVERTED
from forensics.probes import mode_probes, sketch_vectors
from forensics.whitening import load_whitening
from forensics.images import png_bytes
from forensics.pipeline import FacePipeline
from forensics.records import Candidate
from forensics.roundtrip import describe_roundtrip, roundtrip_index, roundtrip_probes, with_roundtrip_weights
from forensics.search import rank_subjects, to_candidates
from forensics.service import open_index

QUERY_MODES = ("fusion", "inverted", "raw", "roundtrip")


@dataclass
class SubjectFilters:
    """Metadata filters applied before ranking (None: no filter)."""

    sex: str | None = None
    born_between: tuple[int, int] | None = None
    where: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"sex": self.sex, "born_between": list(self.born_between) if self.born_between else None,
                "where": self.where}

    def active(self) -> bool:
        return bool(self.sex or self.born_between or self.where)

    def __call__(self, owner) -> bool:
        if self.sex and (owner.sex or "").lower() != self.sex.lower():
            return False
        if self.born_between:
            lo, hi = self.born_between
            if owner.birth_year is None or not lo <= owner.birth_year <= hi:
                return False
        for k, v in self.where.items():
            if str((owner.meta or {}).get(k, "")) != v:
                return False
        return True


@dataclass
class QueryOutcome:
    query_uid: str
    candidates: list[Candidate]
    mode: str
    gallery_size: int
    gallery_fingerprint: str
    timings: dict[str, float]
    inputs: list[dict]


def run_query(gallery: Gallery, pipeline: FacePipeline, sketches: list[Path], top: int = 50,
              mode: str = "fusion", case_id: str | None = None, operator: str | None = None,
              filters: SubjectFilters | None = None, inverter=None, calibration=None,
              whitening: bool = True, progress=None) -> QueryOutcome:
    """Query the gallery with one or more sketches of one suspect; store and return the result.

    Searches in the sketch search space (`forensics.whitening`) when one is fitted for the
    pipeline's embedder (``whitening=False``: the raw descriptor space). Which one was used is
    stored with the query. Mode ``roundtrip``: fusion, plus the synthesized photos scored against
    the round-trip gallery vectors (`forensics.roundtrip`; built or updated first, with
    `progress(done, total)` called as gallery faces are computed).
    """
    if mode not in QUERY_MODES:
        raise ForensicsError(f"--mode must be one of {', '.join(QUERY_MODES)}, not {mode!r}")
    if not sketches:
        raise ForensicsError("give at least one sketch")
    operator = operator or getpass.getuser()
    filters = filters or SubjectFilters()
    timings: dict[str, float] = {}
    t = time.perf_counter()
    if mode != "raw" and inverter is None:
        from forensics.inversion.invert import load_inverter

        inverter = load_inverter()
    whitening = load_whitening(pipeline.embedder.info.key.slug) if whitening else None
    if calibration is None:
        from forensics.calibration import load_calibration

        calibration = load_calibration(pipeline.embedder.info, mode,
                                       space=whitening.space_id if whitening is not None else None)
    repo, emb, index = open_index(gallery, pipeline, whitening)
    rt_index = None
    if mode == "roundtrip":
        rt_index = roundtrip_index(repo, gallery.path, pipeline.embedder, inverter, whitening, progress)
    timings["load_s"] = time.perf_counter() - t

    t = time.perf_counter()
    records = []
    for p in sketches:
        records.append(pipeline.process_one(Path(p), kind="sketch"))
    timings["detect_embed_s"] = time.perf_counter() - t

    t = time.perf_counter()
    raw_vecs, synth_vecs, synth = sketch_vectors(
        pipeline.embedder, np.stack([r.chip for r in records]), np.stack([r.embedding.vector for r in records]),
        inverter if mode != "raw" else None)
    timings["invert_s"] = time.perf_counter() - t

    vecs, w, offsets = mode_probes(raw_vecs, synth_vecs, "fusion" if rt_index is not None else mode,
                                   pipeline.embedder.info.key.slug, inverter.info.sha256 if inverter is not None else None,
                                   whitening)
    # (b, m, d) -> every sketch's raw vectors, then every sketch's inverted ones
    probes, weights = vecs.transpose(1, 0, 2).reshape(-1, vecs.shape[2]), np.repeat(w, len(records))
    also = []
    if rt_index is not None:  # the synthesized photos against the round-trip gallery, one third
        also = [(rt_index, roundtrip_probes(synth_vecs, whitening))]
        weights = with_roundtrip_weights(weights, len(records))

    t = time.perf_counter()
    ranked = rank_subjects(repo, index, probes, top, embedder_key=emb.key,
                           subject_filter=filters if filters.active() else None, weights=weights, also=also)
    candidates = to_candidates(ranked)
    gallery_size = repo.count_subjects()
    if calibration is not None:
        for c in candidates:
            c.fpir = calibration.fpir(c.score, gallery_size)
    timings["search_s"] = time.perf_counter() - t

    uid = uuid.uuid4().hex
    fingerprint = repo.gallery_fingerprint(emb)
    inputs = []
    for i, r in enumerate(records):
        inputs.append({
            "position": i, "sha256": r.sha256, "original_path": str(r.path.absolute()),
            "aligned_png": png_bytes(r.chip), "synthesized_png": png_bytes(synth[i]) if synth is not None else None,
            "landmarks": r.landmarks, "detection": {"method": r.detection_method, "score": r.det_score,
                                                     "box": r.box, "n_faces": r.n_faces,
                                                     "width": r.width, "height": r.height},
        })
    inverter_info = None if mode == "raw" else dataclasses.asdict(inverter.info)
    fusion = None
    if mode in ("fusion", "roundtrip"):
        fusion = offsets.describe() if offsets is not None else {
            "method": "weighted mean of cosines", "weight_inverted": FUSION_WEIGHT_INVERTED,
            "offsets": "none: forensics/weights/fusion.json was fitted for another embedder, inverter "
                       "or search space"}
    params = {"top": top, "mode": mode, "fusion": fusion,
              "face_selection": pipeline.select, "n_sketches": len(records), "mirror_averaged": True,
              "search_space": whitening.describe() if whitening is not None else "raw descriptors",
              "roundtrip": describe_roundtrip(rt_index) if rt_index is not None else None,
              "calibration": calibration.describe() if calibration is not None else None}
    repo.save_query(
        query_uid=uid, case_id=case_id, operator=operator, mode=mode, params=params,
        embedder=emb, inverter=inverter_info, gallery_size=gallery_size, gallery_fingerprint=fingerprint,
        timings=timings, tool_version=__version__, filters=filters.as_dict(),
        inputs=[QueryInputSpec(**{k: v for k, v in d.items()}) for d in inputs],
        candidates=[QueryCandidateSpec(rank=c.rank, score=c.score, subject_external_id=c.subject_id,
                                       subject_name=c.name, image_sha256=c.image_sha256,
                                       score_detail={"fpir": c.fpir, **c.detail}) for c in candidates],
    )
    audit.append_event(gallery, actor=operator, action="query", target=uid,
                       details={"case_id": case_id, "mode": mode, "top": top, "gallery_size": gallery_size,
                                "gallery_fingerprint": fingerprint, "filters": filters.as_dict(),
                                "n_candidates": len(candidates)},
                       input_hashes=[r.sha256 for r in records])
    return QueryOutcome(uid, candidates, mode, gallery_size, fingerprint, timings, inputs)
