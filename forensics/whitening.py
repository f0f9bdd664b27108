"""Partial PCA whitening of face descriptors for sketch queries (the "sketch search space").

dlib's descriptor was trained on photos; its variance is concentrated in a few directions (for
example, those that separate ethnic groups, ages and sexes), and within such a group two faces
differ along weaker directions. A sketch or synthesized photo lands near its group but is
uncertain along the weaker directions, so in the raw space the strong directions dominate its
scores. Whitening rescales every principal direction of photo descriptors by
``(eigenvalue + eps) ** (-alpha / 2)``: alpha = 0 changes nothing, alpha = 1 is full whitening.
Scores in this space are cosines of ``unit((v - mean) @ matrix)`` on both sides: the probe and
every gallery vector.

Fitted on photos only (the training pairs' photos: CUFS train + FS2K train, none of them in any
benchmark gallery) by `scripts/calibrate_scores.py`, for one embedder; stored in
``forensics/weights/whitening.json`` with its SHA-256 recorded in every query. alpha and eps were
chosen by a rule fixed beforehand: two-fold cross-validation over the training pairs (fit on one
half's photos, closed-set rank-1 of the other half's sketches), raw sketches only (their vectors
are not optimistic). See docs/models.md, "Sketch search space".

Photo searches (`forensics search`) stay in the raw space: whitening did not help them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from forensics.fusion import unit_rows

WHITENING_FILE = Path(__file__).parent / "weights" / "whitening.json"
#: chosen by the cross-validation rule above (docs/models.md)
DEFAULT_ALPHA = 0.25
DEFAULT_EPS = 1e-4


@dataclass(frozen=True)
class Whitening:
    embedder: str  # EmbedderKey string, e.g. "dlib-resnet@v1/128"
    mean: np.ndarray  # (d,)
    matrix: np.ndarray  # (d, d), symmetric
    alpha: float
    eps: float
    n_photos: int
    fitted_on: str
    sha256: str = ""  # of the JSON file it was loaded from ("" before saving)

    @property
    def space_id(self) -> str:
        """What an index or a fit made in this space records (changes with the file)."""
        return f"pca-whitening:{self.sha256[:16]}"

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """(n, d) vectors mapped into the whitened space, unit length (float32)."""
        v = unit_rows(np.atleast_2d(np.asarray(vectors, dtype=np.float64)))  # as fitted: unit descriptors
        return unit_rows((v - self.mean) @ self.matrix).astype(np.float32)

    def describe(self) -> dict:
        return {"method": "partial PCA whitening", "alpha": self.alpha, "eps": self.eps, "n_photos": self.n_photos,
                "fitted_on": self.fitted_on, "file": "whitening.json", "sha256": self.sha256}


def fit_whitening(photos: np.ndarray, embedder: str, alpha: float = DEFAULT_ALPHA, eps: float = DEFAULT_EPS,
                  fitted_on: str = "") -> Whitening:
    """Fit on photo descriptors (n, d), each first scaled to unit length."""
    p = unit_rows(np.asarray(photos, dtype=np.float64))
    if len(p) <= p.shape[1]:
        raise ValueError(f"whitening needs more photos than dimensions ({len(p)} <= {p.shape[1]})")
    mean = p.mean(0)
    lam, vecs = np.linalg.eigh(np.cov((p - mean).T))
    matrix = vecs @ np.diag((np.maximum(lam, 0.0) + eps) ** (-alpha / 2)) @ vecs.T
    return Whitening(embedder, mean, matrix, float(alpha), float(eps), len(p), fitted_on)


def save_whitening(w: Whitening, path: Path = WHITENING_FILE) -> Whitening:
    """Write ``w`` as JSON; returns it with the file's SHA-256."""
    text = json.dumps({"embedder": w.embedder, "alpha": w.alpha, "eps": w.eps, "n_photos": w.n_photos,
                       "fitted_on": w.fitted_on, "mean": [float(f"{x:.9g}") for x in w.mean],
                       "matrix": [[float(f"{x:.9g}") for x in row] for row in w.matrix]}) + "\n"
    Path(path).write_text(text)
    return load_whitening(w.embedder, path)


def load_whitening(embedder: str, path: Path = WHITENING_FILE) -> Whitening | None:
    """The whitening fitted for this embedder, or None (no file, or fitted for another embedder)."""
    path = Path(path)
    if not path.is_file():
        return None
    data = path.read_bytes()
    d = json.loads(data)
    if d.get("embedder") != embedder:
        return None
    mean, matrix = np.asarray(d["mean"], np.float64), np.asarray(d["matrix"], np.float64)
    if matrix.shape != (len(mean), len(mean)):
        raise ValueError(f"{path}: matrix {matrix.shape} does not match mean ({len(mean)},)")
    return Whitening(d["embedder"], mean, matrix, float(d["alpha"]), float(d["eps"]), int(d["n_photos"]),
                     str(d.get("fitted_on", "")), hashlib.sha256(data).hexdigest())


def load_dlib_whitening(path: Path = WHITENING_FILE) -> Whitening | None:
    """The whitening fitted for dlib's ResNet (`dlib-resnet`), the network the inverter trains against."""
    from forensics.models.registry import DlibResNetEmbedder
    from forensics.records import EmbedderKey

    return load_whitening(EmbedderKey(DlibResNetEmbedder.NAME, DlibResNetEmbedder.VERSION, 128).slug, path)
