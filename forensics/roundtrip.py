"""Round-trip gallery vectors: each gallery face as the sketch inverter would render it.

A synthesized photo carries the inverter's biases (guessed colours, smoothed skin, its own way of
drawing hair). The `roundtrip` query mode also compares it with gallery faces that went through
the same generator: the gallery photo's aligned chip is turned into a canonical synthetic sketch
in each of the three training styles (`forensics.inversion.sketchify`, no randomness), each is
inverted (mirror-averaged, as sketch probes are) and embedded, and the unit mean of the three
descriptors is the face's round-trip vector. Measured in docs/models.md ("Round-trip gallery").

The vectors are derived data, like the FAISS index: a function of the face chips stored in the
database, the inverter's weights and the sketch search space. `forensics.indexes` keeps them in
a derived index beside the gallery whose sidecar records the space id (inverter SHA-256 +
whitening), updated incrementally. Computing one face costs six inverter passes (~1 s on two CPU
cores), so the first round-trip query over a large gallery takes a while; `forensics gallery
roundtrip` builds it ahead. The weight of the round-trip score is set with the other probe
weights, in `forensics.probes`.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from forensics.errors import ForensicsError
from forensics.fusion import unit_rows
from forensics.inversion.sketchify import STYLES, sketchify
from forensics.probes import ROUNDTRIP_WEIGHT, inverted_vectors


def roundtrip_vectors(embedder, inverter, chips: np.ndarray, whitening=None, batch_size: int = 32) -> np.ndarray:
    """Round-trip vectors (n, d), unit length, of aligned photo chips: the unit mean over the
    styles of each style's (whitened, with a `whitening`) descriptor."""
    out = []
    for i in range(0, len(chips), batch_size):
        batch = chips[i:i + batch_size]
        inv, _ = inverted_vectors(embedder, inverter, canonical_sketches(batch))
        per_style = unit_rows(whitening.apply(inv) if whitening is not None else inv)
        out.append(unit_rows(per_style.reshape(len(STYLES), len(batch), -1).sum(axis=0)))
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, embedder.info.dim), np.float32)


def canonical_sketches(chips: np.ndarray) -> np.ndarray:
    """(len(STYLES) * n, H, W, 3) uint8: every chip as each style's canonical sketch, style by style
    (inverted and embedded as one batch)."""
    return np.stack([sketchify(c, style, randomize=False) for style in STYLES for c in chips])


def describe_roundtrip(space: str) -> dict:
    """What a query in the `roundtrip` mode records about its third score."""
    return {"method": "synthesized photo against round-trip gallery vectors (each gallery chip as a canonical "
                      f"{' / '.join(STYLES)} sketch, inverted, embedded, averaged)",
            "weight": round(ROUNDTRIP_WEIGHT, 6), "index_space": space}


def roundtrip_space_id(inverter, whitening) -> str:
    """What the derived vectors depend on besides the chips: the inverter and the search space."""
    return f"roundtrip:{inverter.info.sha256}:{whitening.space_id if whitening is not None else 'raw'}"


def decode_chip(chips: dict[int, bytes | None], eid: int) -> np.ndarray:
    if eid not in chips:
        raise ForensicsError("the gallery changed while round-trip vectors were being computed; run again "
                             "(the vectors computed so far are kept)")
    png = chips[eid]
    if png is None:
        raise ForensicsError(f"gallery face of embedding {eid} has no stored chip; re-enroll its image "
                             "to use the roundtrip mode")
    with Image.open(io.BytesIO(png)) as im:
        return np.asarray(im.convert("RGB"))
