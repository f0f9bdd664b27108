"""The method section of a report: how the stored query searched, in plain words.

:func:`method_paragraphs` joins one short paragraph per step the query took (detection and
alignment, inversion, descriptors, search space, mirror averaging, fusion, round trip, several
sketches, ranking, score calibration, the limits of a sketch); a step the query did not take
gives no paragraph.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from forensics.records import QueryParams
from gallery.records import QueryRecord

from .values import as_int, num

_PROBES = {
    "raw": "the aligned sketch",
    "inverted": "the synthesized photo",
    "fusion": "the aligned sketch and the synthesized photo",
    "roundtrip": "the aligned sketch and the synthesized photo",
}


def _detection() -> str:
    return (
        "Each sketch was located with the MTCNN face detector (facenet-pytorch's networks); "
        "dlib's 5-point landmark model then marked the outer and inner eye corners and the base "
        "of the nose inside the face box. The face was rotated, scaled and cropped from those "
        "points to a 150 × 150 pixel chip with the same geometry as the gallery's mugshot chips "
        "(the aligned sketch of section 2)."
    )


def _inversion(mode: Optional[str], inverter: Optional[Mapping[str, Any]]) -> Optional[str]:
    if mode not in ("fusion", "inverted", "roundtrip") and not inverter:
        return None
    name = f" ({inverter.get('name')} {inverter.get('version')})" if inverter else ""
    return (
        f"A convolutional sketch-inversion network{name} turned each aligned sketch into a "
        "synthesized photo-like face. The synthesized photo is a computer-generated "
        "approximation derived from the sketch: it is not a photograph of any person."
    )


def _descriptors(mode: Optional[str], q: QueryRecord) -> str:
    emb = q.embedder
    emb_txt = f"{emb.name} {emb.version}, {emb.dim} numbers per face" if emb else "the face-recognition network"
    probes = _PROBES.get(mode or "", "the probe images")
    return (
        f"{probes[0].upper()}{probes[1:]} and every gallery face were converted to descriptors by "
        f"a face-recognition network ({emb_txt}). The score of a gallery image is the cosine "
        "similarity of the descriptors (from −1 to 1; higher means more similar) and a "
        "subject's score is that of their best-matching image."
    )


def _search_space(params: QueryParams) -> Optional[str]:
    space = params.search_space
    if space is None:
        return None
    return (
        "Before scoring, both the probe descriptors and the gallery descriptors were mapped by "
        "one fixed linear rescaling (partial whitening, fitted once on training photos; file "
        f"SHA-256 {str(space.get('sha256', ''))[:16]}…): it evens out how strongly the "
        "network's main directions of variation count, which measurably helps sketches find "
        "their photos. The score is the cosine similarity after this rescaling."
    )


def _mirror(params: QueryParams) -> Optional[str]:
    if not params.mirror_averaged:
        return None
    return (
        "Each descriptor of a sketch (and of its synthesized photo) is the average of the "
        "descriptors of the image and of its mirror image (left and right swapped), which "
        "evens out how unequally a hand-drawn face's two halves are read; gallery faces are "
        "described as they are."
    )


def _fusion(mode: Optional[str], params: QueryParams) -> Optional[str]:
    if mode not in ("fusion", "roundtrip"):
        return None
    w = params.fusion_weight_inverted
    if w is None:
        return "In fusion mode the score combines the sketch's and the synthesized photo's scores."
    offsets = params.fusion is not None and params.fusion.get("offsets") == "fusion.json"
    return (
        f"In fusion mode the score is the weighted mean of the sketch's score (weight "
        f"{1 - w:g}) and the synthesized photo's score (weight {w:g})"
        + (", each first moved by a fixed offset measured on training pairs (the mean difference "
           "between photos and sketches, and between photos and synthesized photos)." if offsets else ".")
    )


def _roundtrip(mode: Optional[str], params: QueryParams) -> Optional[str]:
    if mode != "roundtrip":
        return None
    w = num((params.roundtrip or {}).get("weight"))
    share = f"{w:.2g}" if w is not None else "a fixed share"
    return (
        "In round-trip mode the sketch's and the synthesized photo's scores are combined as in "
        "fusion mode, and a third score, with weight " + share + ", compares the synthesized "
        "photo with each gallery face as the same network would render it: the gallery face was "
        "turned into a computer-drawn sketch in three styles (line, pencil, colour), each was "
        "passed through the sketch-inversion network, and the descriptors were averaged. Both "
        "sides of this score then carry the network's own way of drawing a face."
    )


def _several_sketches(n_sketches: int) -> Optional[str]:
    if n_sketches <= 1:
        return None
    return (
        f"The {n_sketches} sketches were searched together: a subject's score is the mean of its "
        "scores over all the sketches."
    )


def _ranking() -> str:
    return (
        "Subjects are listed from the highest score down. The list always has candidates, "
        "whether or not the person sketched is in the gallery."
    )


def _calibration(calibration: Optional[Mapping[str, Any]], tail: Optional[Mapping[str, Any]] = None) -> str:
    meaning = ("What a score means is given as the estimated false-positive identification rate "
               "(FPIR): how often a search for a person who is not in the gallery returns a "
               "candidate scoring at least this high. It grows with the size of the gallery searched. "
               "A low FPIR makes a chance resemblance less likely; it is not the probability that the "
               "candidate is the person sketched.")
    reference = _reference_source(calibration)
    if tail:
        n, k = as_int(tail.get("n_searched")), as_int(tail.get("k"))
        conf = tail.get("confidence")
        conf_txt = f"{float(conf):.0%}" if isinstance(conf, (int, float)) else "a"
        floor = (f" It is never stated below the reference FPIR estimated for this model and search mode "
                 f"from {reference}." if reference else "")
        return (meaning + f" It was measured on this search's own scores: an exponential curve fitted to the "
                f"{k} highest scores of the {n:,} subjects searched (the top one left out of the fit, as it may "
                f"be the person sketched) gives how often the best of them would score this high if none were "
                f"the person sketched, with a {conf_txt} interval from the fit." + floor)
    if not calibration:
        return ("No false-positive rate was estimated for this search: the gallery searched was too small to "
                "measure its own scores, and no reference calibration applied.")
    return (meaning + f" It was estimated for this model and search mode from {reference} (a reference set; "
            "this query was stored before the FPIR was measured on the searched gallery itself).")


def _reference_source(calibration: Optional[Mapping[str, Any]]) -> Optional[str]:
    if not calibration:
        return None
    n_imp = as_int(calibration.get("n_impostor_scores"))
    src = [f"{n_imp:,} non-mated scores"] if n_imp else []
    if calibration.get("reference"):
        src.append(str(calibration["reference"]))
    return ", ".join(src) or "a reference set"


def _limits() -> str:
    return (
        "A sketch reflects a witness's memory and an artist's rendering. The person sketched "
        "may be absent from the list or from the gallery, and a high-ranked candidate may "
        "only resemble the sketch."
    )


def method_paragraphs(q: QueryRecord, params: QueryParams, calibration: Optional[Mapping[str, Any]]) -> list[str]:
    """The paragraphs of the method section for stored query `q`."""
    mode = q.mode or params.mode
    inverter = q.inverter if isinstance(q.inverter, Mapping) else None
    steps = [
        _detection(), _inversion(mode, inverter), _descriptors(mode, q), _search_space(params),
        _mirror(params), _fusion(mode, params), _roundtrip(mode, params), _several_sketches(len(q.inputs)),
        _ranking(), _calibration(calibration, params.score_tail), _limits(),
    ]
    return [p for p in steps if p is not None]


__all__ = ["method_paragraphs"]
