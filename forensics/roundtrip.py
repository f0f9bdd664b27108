"""Round-trip gallery vectors: each gallery face as the sketch inverter would render it.

A synthesized photo carries the inverter's biases (guessed colours, smoothed skin, its own way of
drawing hair). The `roundtrip` query mode also compares it with gallery faces that went through
the same generator: the gallery photo's aligned chip is turned into its canonical synthetic pencil
sketch (`forensics.inversion.sketchify`, no randomness), which is inverted once at 100x100 px and
resized back to the chip's size; the (whitened) descriptor of that round-trip photo is the face's
round-trip vector. Measured in docs/models.md ("Round-trip gallery").

The recipe (`ROUNDTRIP_RECIPE`) replaced the first one (three styles, each inverted with its
mirror image at full size: six inverter passes, ~2 s of CPU a face) on 2026-12-02, chosen by a
rule fixed beforehand on CUFS train among one-pass variants that meet 100 ms a face on two CPU
cores (research/roundtrip/gallery-variants-2026-12-02.json). The space id names the recipe, so
vectors of another recipe are rebuilt, never mixed.

The vectors are derived data, like the FAISS index: a function of the face chips stored in the
database, the inverter's weights and the sketch search space. `forensics.indexes` keeps them in
a derived index beside the gallery whose sidecar records the space id (recipe + inverter SHA-256
+ whitening), updated incrementally: by `forensics enroll` where the gallery computes them at
enrollment (`forensics.settings`), else by `forensics gallery roundtrip` ahead of the first
round-trip query, or by that query (docs/benchmarks.md, "Round-trip gallery speed", gives the
cost a face). The
weight of the round-trip score is set with the other probe weights, in `forensics.probes`.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from forensics.errors import ForensicsError
from forensics.fusion import unit_rows
from forensics.inversion.sketchify import sketchify
from forensics.probes import ROUNDTRIP_WEIGHT


#: The round-trip recipe, chosen on CUFS train by measured cost and rank-1
#: (research/roundtrip/gallery-variants-2026-12-02.json): each gallery chip as its canonical
#: pencil sketch, inverted once (no mirror image) at ROUNDTRIP_SIZE pixels and resized back.
ROUNDTRIP_STYLE = "pencil"
ROUNDTRIP_SIZE = 100
ROUNDTRIP_RECIPE = f"{ROUNDTRIP_STYLE}@{ROUNDTRIP_SIZE}"


def roundtrip_vectors(embedder, inverter, chips: np.ndarray, whitening=None, batch_size: int = 32) -> np.ndarray:
    """Round-trip vectors (n, d), unit length, of aligned photo chips: the (whitened, with a
    `whitening`) descriptor of each chip's round-trip photo."""
    out = []
    for i in range(0, len(chips), batch_size):
        vecs = embedder.embed(roundtrip_photos(inverter, chips[i:i + batch_size]))
        out.append(unit_rows(whitening.apply(vecs) if whitening is not None else vecs))
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, embedder.info.dim), np.float32)


def roundtrip_photos(inverter, chips: np.ndarray) -> np.ndarray:
    """(n, H, W, 3) uint8: each chip as the inverter renders its canonical sketch (ROUNDTRIP_RECIPE)."""
    from forensics.inversion.invert import invert_chips  # PyTorch: imported when an inverter runs

    h, w = chips.shape[1:3]
    small = np.stack([_resized(sketchify(c, ROUNDTRIP_STYLE, randomize=False), ROUNDTRIP_SIZE, ROUNDTRIP_SIZE)
                      for c in chips])
    return np.stack([_resized(s, w, h) for s in invert_chips(inverter, small)])


def _resized(img: np.ndarray, w: int, h: int) -> np.ndarray:
    return np.asarray(Image.fromarray(img).resize((w, h), Image.BILINEAR))


def describe_roundtrip(space: str) -> dict:
    """What a query in the `roundtrip` mode records about its third score."""
    return {"method": "synthesized photo against round-trip gallery vectors (each gallery chip as a canonical "
                      f"{ROUNDTRIP_STYLE} sketch, inverted at {ROUNDTRIP_SIZE} px, embedded)",
            "weight": round(ROUNDTRIP_WEIGHT, 6), "index_space": space}


def roundtrip_space_id(inverter, whitening) -> str:
    """What the derived vectors depend on besides the chips: the inverter and the search space."""
    return (f"roundtrip:{ROUNDTRIP_RECIPE}:{inverter.info.sha256}:"
            f"{whitening.space_id if whitening is not None else 'raw'}")


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
