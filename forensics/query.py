"""Sketch query (detect and align each sketch, invert it, embed both, search, fuse, rank, store)
and photo search.

Several sketches of one suspect (several witnesses) are fused into one candidate list: every
probe (`forensics.probes`) scores every retrieved subject, and the subject's score is the
weighted mean (`forensics.ranking`). Every query is stored in the gallery DB with everything
needed to reproduce and report it (its `QueryParams` among them), and an audit event is appended.
"""

from __future__ import annotations

import dataclasses
import getpass
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from gallery import audit
from gallery.db import Gallery
from gallery.records import QueryCandidateSpec, QueryInputSpec
from gallery.seal import subject_key
from gallery.sealed import save_query_sealed

from forensics import __version__
from forensics.calibration import within_max_fpir
from forensics.errors import ForensicsError
from forensics.filters import SubjectFilters, subjects_searched
from forensics.images import png_bytes
from forensics.modes import DEFAULT_SKETCH_MODE, get_mode
from forensics.pipeline import FacePipeline
from forensics.records import Candidate, FaceRecord, QueryParams, SearchResult
from forensics.searcher import Searcher


@dataclass
class QueryOutcome:
    query_uid: str
    candidates: list[Candidate]
    mode: str
    gallery_size: int
    gallery_fingerprint: str
    timings: dict[str, float]
    inputs: list[dict]
    subjects_searched: int | None = None  # after the filters; the FPIR is stated for this many
    max_fpir: float | None = None  # candidates above it are stored but not shown

    @property
    def shown(self) -> list[Candidate]:
        """The candidates at or below `max_fpir` (all without one)."""
        return [c for c in self.candidates if within_max_fpir(c.fpir, self.max_fpir)]


def _refuse_repeated_sketches(records: list[FaceRecord]) -> None:
    """Each sketch once: the same file given twice would count one witness's sketch twice in
    the fused score."""
    first: dict[str, Path] = {}
    for r in records:
        if r.sha256 in first:
            raise ForensicsError(f"{r.path}: the same sketch as {first[r.sha256]} (SHA-256 {r.sha256[:16]}…): "
                                 "give each sketch once")
        first[r.sha256] = r.path


def run_query(gallery: Gallery, pipeline: FacePipeline, sketches: list[Path], top: int = 50,
              mode: str = DEFAULT_SKETCH_MODE, case_id: str | None = None, operator: str | None = None,
              filters: SubjectFilters | None = None, inverter=None, whitening: bool = True,
              progress=None, provenance: list[dict] | None = None, max_fpir: float | None = None) -> QueryOutcome:
    """Query the gallery with one or more sketches of one suspect; store and return the result.

    Searches in the sketch search space (`forensics.whitening`) when one is fitted for the
    pipeline's embedder (``whitening=False``: the raw descriptor space). Which one was used is
    stored with the query. Mode ``roundtrip``: the round-trip gallery vectors are built or updated
    first, with `progress(done, total)` called as gallery faces are computed. `provenance`: per
    sketch, who saw and who drew it (`sketch_provenance`), stored with the query. `max_fpir`:
    stored with the query; every candidate is stored, and those above it are not shown
    (`QueryOutcome.shown`, reports).
    """
    get_mode(mode)
    if not sketches:
        raise ForensicsError("give at least one sketch")
    operator = operator or getpass.getuser()
    filters = filters or SubjectFilters()
    n_searched = subjects_searched(gallery.repository(), filters)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    searcher = Searcher(gallery, pipeline, mode, "sketch", whiten=whitening, inverter=inverter, progress=progress)
    timings["load_s"] = time.perf_counter() - t
    t = time.perf_counter()
    records = [pipeline.process_one(Path(p), kind="sketch") for p in sketches]
    timings["detect_embed_s"] = time.perf_counter() - t
    _refuse_repeated_sketches(records)
    t = time.perf_counter()
    found = searcher.search(records, top, grouped=True, subject_filter=filters if filters.active() else None,
                            n_searched=n_searched)
    timings["search_s"] = time.perf_counter() - t
    candidates = found.candidates[0]
    params = searcher.params(top, len(records), found.probes)
    params.subjects_searched = n_searched
    params.sketch_provenance = provenance
    params.score_tail = found.tails[0].describe() if found.tails and found.tails[0] is not None else None
    params.max_fpir = max_fpir
    outcome = QueryOutcome(uuid.uuid4().hex, candidates, mode, searcher.gallery_size(),
                           searcher.repo.gallery_fingerprint(searcher.embedder_row), timings,
                           _stored_inputs(records, found.probes.synthesized), n_searched, max_fpir)
    _store(gallery, searcher, outcome, params, case_id, operator, filters, records)
    return outcome


def _stored_inputs(records, synthesized) -> list[dict]:
    """What is kept of each sketch: its hash, path, aligned and synthesized faces, detection and
    estimated pose (`detection["pose"]`, `PoseEstimate.to_dict()`)."""
    return [{
        "position": i, "sha256": r.sha256, "original_path": str(r.path.absolute()),
        "aligned_png": png_bytes(r.chip), "synthesized_png": png_bytes(synthesized[i]) if synthesized is not None else None,
        "landmarks": r.landmarks, "detection": {"method": r.detection_method, "score": r.det_score,
                                                 "box": r.box, "n_faces": r.n_faces,
                                                 "width": r.width, "height": r.height,
                                                 "pose": r.pose.to_dict()},
    } for i, r in enumerate(records)]


def _store(gallery: Gallery, searcher: Searcher, q: QueryOutcome, params: QueryParams, case_id, operator,
           filters: SubjectFilters, records) -> None:
    """The query, its inputs and candidates in the gallery DB, and its audit event sealing them
    (the digest of the stored rows, `gallery.seal`), in one transaction."""
    inverter = searcher.models.inverter
    save_query_sealed(
        gallery, actor=operator,
        details={"case_id": case_id, "mode": q.mode, "top": params.top, "gallery_size": q.gallery_size,
                 "gallery_fingerprint": q.gallery_fingerprint, "filters": filters.as_dict(),
                 "subjects_searched": q.subjects_searched, "n_candidates": len(q.candidates)},
        input_hashes=[r.sha256 for r in records],
        query_uid=q.query_uid, case_id=case_id, operator=operator, mode=q.mode, params=params.to_dict(),
        embedder=searcher.embedder_row, inverter=dataclasses.asdict(inverter.info) if inverter is not None else None,
        gallery_size=q.gallery_size, gallery_fingerprint=q.gallery_fingerprint,
        timings=q.timings, tool_version=__version__, filters=filters.as_dict(),
        inputs=[QueryInputSpec(**d) for d in q.inputs],
        candidates=[QueryCandidateSpec(rank=c.rank, score=c.score, subject_external_id=c.subject_id,
                                       subject_name=c.name, image_sha256=c.image_sha256,
                                       score_detail={"fpir": c.fpir, **c.detail}) for c in q.candidates],
    )


def search_photo(gallery: Gallery, pipeline: FacePipeline, image: Path, top: int = 10,
                 operator: str | None = None) -> SearchResult:
    """Search the gallery with a face photo (raw descriptors, no inversion; the FPIR from the
    search's own score tail, no reference calibration);
    audit-logged (the probe's hash and the ranked subjects' hashed ids with their scores)."""
    t0 = time.perf_counter()
    searcher = Searcher(gallery, pipeline, "raw", "photo", whiten=False, calibrate=False)
    rec = pipeline.process_one(image, kind="photo")
    t1 = time.perf_counter()
    found = searcher.search([rec], top)
    t2 = time.perf_counter()
    result = SearchResult(candidates=found.candidates[0], embedder=pipeline.embedder.info,
                          gallery_size=searcher.gallery_size(),
                          gallery_fingerprint=searcher.repo.gallery_fingerprint(searcher.embedder_row),
                          probe_sha256=[rec.sha256], timings={"embed_s": t1 - t0, "search_s": t2 - t1})
    audit.append_event(gallery, actor=operator or getpass.getuser(), action="search", target=rec.sha256,
                       details={"top": top, "gallery_size": result.gallery_size,
                                "gallery_fingerprint": result.gallery_fingerprint,
                                "candidates": [[subject_key(c.subject_id), c.score] for c in result.candidates]},
                       input_hashes=[rec.sha256])
    return result
