"""What a score means: the estimated false-positive identification rate (FPIR).

For a score s and a gallery of N subjects, FPIR(s, N) estimates how often a search for a person
who is NOT in the gallery (a non-mated search) returns some candidate scoring s or more:

    p(s)       = fraction of non-mated (probe, subject) scores >= s, measured on a reference set
    FPIR(s, N) = 1 - (1 - p(s)) ** N

assuming independent non-mated comparisons. p(s) is measured per embedder and per query mode
(raw sketch, synthesized photo, fusion: their score distributions differ) by
`scripts/calibrate_scores.py`: probes are the CUFS train and FS2K train sketches (never the test
or validation sketches), non-mated subjects are LFW people, each scored by their best image.
The result is stored in `forensics/weights/calibration.json` as the survival function p(s) on a
grid of scores; between grid points p is interpolated in log space; beyond the largest observed
impostor score, p is reported as an upper bound of 1/(number of impostor scores). Sketch scores
are measured in the space the query searches in (``space``: the sketch search space's id, see
forensics/whitening.py); a calibration made in another space does not apply.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from forensics.records import EmbedderInfo

CALIBRATION_FILE = Path(__file__).parent / "weights" / "calibration.json"


@dataclass
class ScoreCalibration:
    embedder: str
    mode: str
    grid: np.ndarray  # ascending scores
    survival: np.ndarray  # p(score >= grid[i]) among non-mated subject scores
    n_impostor: int
    n_probes: int
    n_subjects: int
    reference: str
    space: str | None = None

    def p_nonmated(self, score: float) -> float:
        floor = 1.0 / max(self.n_impostor, 1)
        if score <= self.grid[0]:
            return float(self.survival[0])
        if score >= self.grid[-1]:
            return floor
        logp = np.log(np.maximum(self.survival, floor))
        return float(max(np.exp(np.interp(score, self.grid, logp)), floor))

    def fpir(self, score: float, gallery_size: int) -> float:
        p = self.p_nonmated(score)
        return float(-np.expm1(gallery_size * np.log1p(-min(p, 1 - 1e-15))))

    def describe(self) -> dict:
        return {"method": "FPIR(s,N) = 1-(1-p(s))^N, p from non-mated scores on a reference set",
                "embedder": self.embedder, "mode": self.mode, "space": self.space, "reference": self.reference,
                "n_impostor_scores": self.n_impostor, "n_probes": self.n_probes, "n_subjects": self.n_subjects}


def fit_calibration(impostor_scores: np.ndarray, embedder: str, mode: str, n_probes: int, n_subjects: int,
                    reference: str, grid: np.ndarray | None = None, space: str | None = None) -> ScoreCalibration:
    s = np.sort(np.asarray(impostor_scores, dtype=np.float64))
    grid = np.round(np.linspace(-0.2, 1.0, 241), 4) if grid is None else grid
    survival = 1.0 - np.searchsorted(s, grid, side="left") / len(s)
    return ScoreCalibration(embedder, mode, grid, survival, len(s), n_probes, n_subjects, reference, space)


def save_calibrations(cals: list[ScoreCalibration], path: Path = CALIBRATION_FILE) -> None:
    data = {f"{c.embedder}|{c.mode}": {**c.describe(), "grid": c.grid.tolist(),
                                        "survival": [float(f"{x:.6g}") for x in c.survival]} for c in cals}
    Path(path).write_text(json.dumps(data, indent=1))


def load_calibration(embedder: EmbedderInfo, mode: str, path: Path = CALIBRATION_FILE,
                     space: str | None = None) -> ScoreCalibration | None:
    """The calibration for this embedder, mode and search space, or None where none was measured
    (reports then say the score is uncalibrated)."""
    if not Path(path).is_file():
        return None
    data = json.loads(Path(path).read_text())
    d = data.get(f"{embedder.key.slug}|{mode}")
    if d is None or d.get("space") != space:
        return None
    return ScoreCalibration(d["embedder"], d["mode"], np.array(d["grid"]), np.array(d["survival"]),
                            d["n_impostor_scores"], d["n_probes"], d["n_subjects"], d["reference"], d.get("space"))
