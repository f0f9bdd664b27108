"""Probe vectors of sketches: the sketch as drawn (raw) and its synthesized photo (inverted).

Each vector is the mean of the L2-normalised descriptors of the chip and of its mirror image,
re-normalised (mirror test-time augmentation). A sketch is drawn by hand and is never quite
symmetric; the recognition network, trained on photos, reads the two halves of the face
unequally, and averaging over the mirror image takes some of that out. The inverter sees the
mirrored sketch and makes its own synthesized photo from it. Measured on the closed-set
protocols (rank-1, summed scores of raw and inverted): CUFS test 77.2% -> 79.9%, FS2K val 53.0%
-> 54.5% (benchmarks in docs/benchmarks.md use it). Gallery photos are enrolled as they are:
mirroring them would double the cost of enrollment for no measured gain.
"""

from __future__ import annotations

import numpy as np

from forensics.fusion import FusionOffsets, fusion_probes, load_offsets, unit_rows
from forensics.models.registry import Embedder


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
    from forensics.inversion.invert import invert_chips

    raw_v = embedder.embed(chips) if raw is None else raw
    if mirror:
        raw_v = _mean_direction(raw_v, embedder.embed(mirrored(chips)))
    if inverter is None:
        return raw_v, None, None
    synth = invert_chips(inverter, chips)
    inv_v = embedder.embed(synth)
    if mirror:
        inv_v = _mean_direction(inv_v, embedder.embed(invert_chips(inverter, mirrored(chips))))
    return raw_v, inv_v, synth


def mode_probes(raw: np.ndarray, inverted: np.ndarray | None, mode: str, embedder_key: str,
                inverter_sha256: str | None = None, whitening=None
                ) -> tuple[np.ndarray, np.ndarray, FusionOffsets | None]:
    """(probe vectors (b, m, d), weights (m,), fusion offsets or None) of b sketches in `mode`.

    raw: m = 1, the sketches' vectors; inverted: m = 1, their synthesized photos' vectors;
    fusion: m = 2, both, moved by the fusion offsets fitted for this embedder, inverter and space.
    With a `forensics.whitening.Whitening` every vector is first mapped into the sketch search
    space (the gallery must then be searched in it too: `service.open_index(..., whitening)`).
    """
    space = None
    if whitening is not None:
        raw = whitening.apply(raw)
        inverted = None if inverted is None else whitening.apply(inverted)
        space = whitening.space_id
    if mode == "raw":
        return raw[:, None, :], np.ones(1), None
    if inverted is None:
        raise ValueError(f"mode {mode!r} needs the synthesized photos' vectors")
    if mode == "inverted":
        return inverted[:, None, :], np.ones(1), None
    offsets = load_offsets(embedder_key, inverter_sha256, space=space)
    probes, w = fusion_probes(raw, inverted, offsets)  # (2b, d): adjusted raw ones, then inverted ones
    b = len(raw)
    return np.stack([probes[:b], probes[b:]], axis=1), np.array([w[0], w[-1]]), offsets
