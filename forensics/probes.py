"""Probe building: face records -> the weighted probe vectors a search scores.

One implementation for `forensics query`, `forensics evaluate`, photo search and the benchmarks.
A probe is one vector, searched in one of the gallery's derived indexes (`forensics.indexes`),
with a weight; a `ProbeSet` is what one search scores (all the sketches of one query, or one
probe of an evaluation).

Sketch probes: each vector is the mean of the L2-normalised descriptors of the chip and of its
mirror image, re-normalised (mirror test-time augmentation). A sketch is drawn by hand and is
never quite symmetric; the recognition network, trained on photos, reads the two halves of the
face unequally, and averaging over the mirror image takes some of that out. The inverter sees the
mirrored sketch and makes its own synthesized photo from it. Measured on the closed-set
protocols (rank-1, summed scores of raw and inverted): CUFS test 77.2% -> 79.9%, FS2K val 53.0%
-> 54.5%. Gallery photos are enrolled as they are: mirroring them would double the cost of
enrollment for no measured gain. Sketch probes are searched in the sketch search space
(`forensics.whitening`) when one is given; photo probes always in the raw descriptor space.

Weights (a subject's score is the weighted mean of its per-probe scores; the weights of a set sum
to 1, shared equally among its b sketches):
- raw / inverted: one probe per sketch;
- fusion: the drawn sketch (1 − FUSION_WEIGHT_INVERTED) and its synthesized photo
  (FUSION_WEIGHT_INVERTED), each first moved by the fusion offsets (`forensics.fusion`);
- roundtrip: the fusion probes share 1 − ROUNDTRIP_WEIGHT; the synthesized photo (not moved)
  against the round-trip gallery vectors gets ROUNDTRIP_WEIGHT (`forensics.roundtrip`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from forensics.errors import ForensicsError
from forensics.fusion import FUSION_WEIGHT_INVERTED, FusionOffsets, apply_offsets, unit_rows
from forensics.models.registry import Embedder
from forensics.modes import get_mode

#: the gallery's derived indexes a probe can be searched in (paths and upkeep: forensics.indexes)
INDEX_PLAIN = "plain"  # the stored descriptors
INDEX_WHITENED = "whitened"  # the sketch search space
INDEX_ROUNDTRIP = "roundtrip"  # round-trip vectors, sketch search space
INDEX_ROUNDTRIP_RAW = "roundtrip-raw"  # round-trip vectors, raw descriptor space

#: Weight of the round-trip score in the `roundtrip` mode: one third, the two fusion scores
#: sharing the other two thirds as in `fusion` (fixed before measuring: docs/models.md).
ROUNDTRIP_WEIGHT = 1.0 / 3.0


@dataclass
class Probe:
    """One probe vector: what it is (`label`, `kind`), where it is searched and its weight."""

    label: str  # "sketch 1", "photo"
    kind: str  # "drawn", "synthesized", "synthesized vs round-trip", "photo"
    index: str  # one of the INDEX_* names
    vector: np.ndarray  # (d,) float32, unit length
    weight: float

    def describe(self) -> dict:
        return {"label": self.label, "kind": self.kind, "index": self.index, "weight": round(self.weight, 6)}


@dataclass
class ProbeSet:
    """The probes one search scores together (their weights sum to 1)."""

    probes: list[Probe]

    @property
    def weights(self) -> np.ndarray:
        return np.array([p.weight for p in self.probes], dtype=np.float64)

    def indexes(self) -> list[str]:
        return sorted({p.index for p in self.probes})


@dataclass
class ProbeModels:
    """What turns face records into probes: the embedder, and for sketch modes the inverter, the
    sketch search space (None: raw descriptors) and the fusion offsets (None: none apply)."""

    embedder: Embedder
    inverter: object | None = None
    whitening: object | None = None
    offsets: FusionOffsets | None = None


@dataclass
class BuiltProbes:
    sets: list[ProbeSet]
    synthesized: np.ndarray | None = None  # (n, H, W, 3) the synthesized photos (sketch modes)
    records: list = field(default_factory=list)


def mirrored(chips: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) chips flipped left to right."""
    return np.ascontiguousarray(chips[:, :, ::-1])


def _mean_direction(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return unit_rows(unit_rows(a) + unit_rows(b))


def sketch_vectors(embedder: Embedder, chips: np.ndarray, raw: np.ndarray | None = None, inverter=None,
                   mirror: bool = True) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(raw vectors, inverted vectors or None, synthesized chips or None) of aligned sketch chips.

    `raw`: the chips' descriptors if already computed. Without `inverter` only the raw vectors.
    """
    raw_v = embedder.embed(chips) if raw is None else raw
    if mirror:
        raw_v = _mean_direction(raw_v, embedder.embed(mirrored(chips)))
    if inverter is None:
        return raw_v, None, None
    inv_v, synth = inverted_vectors(embedder, inverter, chips, mirror)
    return raw_v, inv_v, synth


def inverted_vectors(embedder: Embedder, inverter, chips: np.ndarray,
                     mirror: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(inverted vectors, synthesized chips) of aligned sketch chips: the descriptor of each
    synthesized photo, with `mirror` averaged with that of the mirrored sketch's synthesized photo."""
    from forensics.inversion.invert import invert_chips  # PyTorch: imported when an inverter runs

    synth = invert_chips(inverter, chips)
    inv_v = embedder.embed(synth)
    if mirror:
        inv_v = _mean_direction(inv_v, embedder.embed(invert_chips(inverter, mirrored(chips))))
    return inv_v, synth


def build_probes(models: ProbeModels, mode: str, records: list, kind: str = "sketch",
                 grouped: bool = True) -> BuiltProbes:
    """The probe sets of face `records` (FaceRecords) in `mode`.

    `kind`: "sketch" (mirror-averaged, searched in the sketch search space when `models` has one)
    or "photo" (embedded as it is, raw descriptor space). `grouped`: all records form one set (the
    sketches of one query); else one set per record (an evaluation's probes).
    """
    m = get_mode(mode)
    if kind not in ("sketch", "photo"):
        raise ForensicsError(f"probe kind must be sketch or photo, not {kind!r}")
    if m.needs_inverter and models.inverter is None:
        raise ForensicsError(f"mode {m.name} needs the sketch-inversion network")
    if not records:
        return BuiltProbes([], None, [])
    raw = np.stack([r.embedding.vector for r in records])
    chips = np.stack([r.chip for r in records])
    if kind == "photo" and not m.needs_inverter:
        raw_v, inv_v, synth = raw, None, None
    else:
        raw_v, inv_v, synth = sketch_vectors(models.embedder, chips, raw,
                                             models.inverter if m.needs_inverter else None, mirror=kind == "sketch")
    white = models.whitening if kind == "sketch" else None
    if white is not None:
        raw_v = white.apply(raw_v)
        inv_v = None if inv_v is None else white.apply(inv_v)
    groups = [list(range(len(records)))] if grouped else [[i] for i in range(len(records))]
    vectors = _Vectors(m.name, kind, white is not None, raw_v, inv_v, models.offsets)
    return BuiltProbes([vectors.probe_set(g) for g in groups], synth, list(records))


@dataclass
class _Vectors:
    """The (searched-space) vectors of a batch of records, from which each probe set is cut."""

    mode: str
    kind: str
    whitened: bool
    raw: np.ndarray
    inverted: np.ndarray | None
    offsets: FusionOffsets | None

    def __post_init__(self):
        self.space = INDEX_WHITENED if self.whitened else INDEX_PLAIN
        self.raw_fused = self.inv_fused = None
        if self.mode in ("fusion", "roundtrip"):
            self.raw_fused, self.inv_fused = apply_offsets(self.raw, self.inverted, self.offsets)

    def probe_set(self, rows: list[int]) -> ProbeSet:
        b = len(rows)
        drawn = "photo" if self.kind == "photo" else "drawn"
        labels = ["photo"] * b if self.kind == "photo" and b == 1 else [f"{self.kind} {j + 1}" for j in range(b)]
        if self.mode in ("raw", "inverted"):
            kind, vecs = (drawn, self.raw) if self.mode == "raw" else ("synthesized", self.inverted)
            return ProbeSet([self._p(labels[j], kind, self.space, vecs[i], 1 / b) for j, i in enumerate(rows)])
        share = 1.0 if self.mode == "fusion" else 1.0 - ROUNDTRIP_WEIGHT
        w_inv = FUSION_WEIGHT_INVERTED
        probes = [self._p(labels[j], drawn, self.space, self.raw_fused[i], share * (1 - w_inv) / b)
                  for j, i in enumerate(rows)]
        probes += [self._p(labels[j], "synthesized", self.space, self.inv_fused[i], share * w_inv / b)
                   for j, i in enumerate(rows)]
        if self.mode == "roundtrip":
            rt = INDEX_ROUNDTRIP if self.whitened else INDEX_ROUNDTRIP_RAW
            probes += [self._p(labels[j], "synthesized vs round-trip", rt, self.inverted[i], ROUNDTRIP_WEIGHT / b)
                       for j, i in enumerate(rows)]
        return ProbeSet(probes)

    @staticmethod
    def _p(label: str, kind: str, index: str, vector: np.ndarray, weight: float) -> Probe:
        return Probe(label, kind, index, unit_rows(np.asarray(vector, dtype=np.float32)), float(weight))
