"""Fusion of the sketch and its synthesized photo (query mode `fusion`).

A sketch's descriptor and its synthesized photo's descriptor each sit, on average, at an offset
from the descriptors of real photos (the "sketch" and "synthesized" looks). Fusion first moves
each probe by the mean offset measured on the training pairs (CUFS train + FS2K train minus the
validation pairs: mean(photo) − mean(probe), per probe type), re-normalises, then scores every
subject by the weighted mean of the two cosine similarities (weight FUSION_WEIGHT_INVERTED on the
synthesized photo). The offsets are fitted by `scripts/calibrate_scores.py` for one embedder and
one inverter (by SHA-256) and stored in `forensics/weights/fusion.json`; with another inverter the
offsets do not apply, and the query records that it fused without them. The offsets are fitted in
the space the probes are searched in (``space``: the sketch search space's id, see
forensics/whitening.py; None for the raw descriptor space).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FUSION_FILE = Path(__file__).parent / "weights" / "fusion.json"
#: Weight of the synthesized photo's score in `fusion` mode (the raw sketch gets the rest).
FUSION_WEIGHT_INVERTED = 0.5


@dataclass
class FusionOffsets:
    embedder: str
    inverter_sha256: str
    offset_raw: np.ndarray
    offset_inverted: np.ndarray
    n_pairs: int
    space: str | None = None

    def describe(self) -> dict:
        return {"method": "mean offset per probe type, then weighted mean of cosines",
                "weight_inverted": FUSION_WEIGHT_INVERTED, "offsets": "fusion.json", "embedder": self.embedder,
                "inverter_sha256": self.inverter_sha256, "n_pairs": self.n_pairs, "space": self.space}


def unit_rows(v: np.ndarray) -> np.ndarray:
    """Each vector (last axis) scaled to unit length."""
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def fit_offsets(raw: np.ndarray, inverted: np.ndarray, photos: np.ndarray, embedder: str,
                inverter_sha256: str, space: str | None = None) -> FusionOffsets:
    """Offsets from training pairs whose vectors are already in ``space`` (unit length)."""
    return FusionOffsets(embedder, inverter_sha256, photos.mean(0) - raw.mean(0), photos.mean(0) - inverted.mean(0),
                         len(photos), space)


def save_offsets(f: FusionOffsets, path: Path = FUSION_FILE) -> None:
    Path(path).write_text(json.dumps({"embedder": f.embedder, "inverter_sha256": f.inverter_sha256,
                                      "space": f.space, "n_pairs": f.n_pairs, "offset_raw": [round(float(x), 7) for x in f.offset_raw],
                                      "offset_inverted": [round(float(x), 7) for x in f.offset_inverted]}, indent=1))


def load_offsets(embedder_key: str, inverter_sha256: str, path: Path = FUSION_FILE,
                 space: str | None = None) -> FusionOffsets | None:
    """The offsets fitted for this embedder, inverter and search space, or None (then fusion uses none)."""
    if not Path(path).is_file():
        return None
    d = json.loads(Path(path).read_text())
    if d.get("embedder") != embedder_key or d.get("inverter_sha256") != inverter_sha256 or d.get("space") != space:
        return None
    return FusionOffsets(d["embedder"], d["inverter_sha256"], np.asarray(d["offset_raw"], np.float32),
                         np.asarray(d["offset_inverted"], np.float32), int(d["n_pairs"]), d.get("space"))


def apply_offsets(raw: np.ndarray, inverted: np.ndarray, offsets: FusionOffsets | None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The sketches' and synthesized photos' vectors each moved by its offset and re-normalised
    (unchanged without offsets). Weighting the two scores is `forensics.probes`' job."""
    if offsets is None:
        return raw, inverted
    return unit_rows(raw + offsets.offset_raw), unit_rows(inverted + offsets.offset_inverted)
