"""Round-trip gallery vectors: each gallery face as the sketch inverter would render it.

A synthesized photo carries the inverter's biases (guessed colours, smoothed skin, its own way of
drawing hair). The `roundtrip` query mode also compares it with gallery faces that went through
the same generator: the gallery photo's aligned chip is turned into a canonical synthetic sketch
in each of the three training styles (`forensics.inversion.sketchify`, no randomness), each is
inverted (mirror-averaged, as sketch probes are) and embedded, and the unit mean of the three
descriptors is the face's round-trip vector. Measured in docs/models.md ("Round-trip gallery").

The vectors are derived data, like the FAISS index: a function of the face chips stored in the
database, the inverter's weights and the sketch search space. They live in a derived index
beside the gallery, ``<gallery>.roundtrip.faiss`` (``.roundtrip-raw.faiss`` for ``--no-whiten``),
whose sidecar records the space id (inverter SHA-256 + whitening); it is updated incrementally (only faces new since the last build are
computed) and rebuilt from the database whenever the inverter or the whitening changes.
Computing one face costs six inverter passes (~1 s on two CPU cores), so the first round-trip
query over a large gallery takes a while; `forensics gallery roundtrip` builds it ahead.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from gallery.errors import EmbedderMismatchError, IndexCorruptError
from gallery.index import FLAT, VectorIndex, default_index_path, sidecar_path

from forensics.errors import ForensicsError
from forensics.fusion import unit_rows
from forensics.inversion.sketchify import STYLES, sketchify
from forensics.probes import sketch_vectors

#: Weight of the round-trip score in the `roundtrip` mode: one third, the two fusion scores
#: sharing the other two thirds as in `fusion` (fixed before measuring: docs/models.md).
ROUNDTRIP_WEIGHT = 1.0 / 3.0


def roundtrip_probes(inverted: np.ndarray, whitening=None) -> np.ndarray:
    """Synthesized photos' descriptors in the round-trip index's space (whitened with a `whitening`)."""
    return whitening.apply(inverted) if whitening is not None else inverted


def with_roundtrip_weights(weights: np.ndarray, n_probes: int) -> np.ndarray:
    """Probe weights of the `roundtrip` mode: the fusion probes' `weights` scaled to share
    1 − ROUNDTRIP_WEIGHT, then `n_probes` round-trip probes sharing ROUNDTRIP_WEIGHT."""
    weights = np.asarray(weights, dtype=float)
    return np.concatenate([weights / weights.sum() * (1 - ROUNDTRIP_WEIGHT),
                           np.full(n_probes, ROUNDTRIP_WEIGHT / n_probes)])


def roundtrip_vectors(embedder, inverter, chips: np.ndarray, whitening=None, batch_size: int = 32) -> np.ndarray:
    """Round-trip vectors (n, d), unit length, of aligned photo chips: the unit mean over the
    styles of each style's (whitened, with a `whitening`) descriptor."""
    out = []
    for i in range(0, len(chips), batch_size):
        batch = chips[i:i + batch_size]
        total = 0
        for style in STYLES:
            sketches = np.stack([sketchify(c, style, randomize=False) for c in batch])
            _, inv, _ = sketch_vectors(embedder, sketches, None, inverter)
            total = total + unit_rows(roundtrip_probes(inv, whitening))
        out.append(unit_rows(total))
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, embedder.info.dim), np.float32)


def describe_roundtrip(index: VectorIndex) -> dict:
    """What a query in the `roundtrip` mode records about its third score."""
    return {"method": "synthesized photo against round-trip gallery vectors (each gallery chip as a canonical "
                      f"{' / '.join(STYLES)} sketch, inverted, embedded, averaged)",
            "weight": round(ROUNDTRIP_WEIGHT, 6), "index_space": index.space}


def roundtrip_space_id(inverter, whitening) -> str:
    """What the derived vectors depend on besides the chips: the inverter and the search space."""
    return f"roundtrip:{inverter.info.sha256}:{whitening.space_id if whitening is not None else 'raw'}"


def roundtrip_index_path(gallery_path: Path, whitened: bool = True) -> Path:
    """``gallery.db`` -> ``gallery.roundtrip.faiss`` (sketch search space) or
    ``gallery.roundtrip-raw.faiss`` (raw descriptors: ``--no-whiten``), so that switching between
    the two never throws away the costly vectors of the other."""
    return default_index_path(gallery_path).with_suffix(".roundtrip.faiss" if whitened else ".roundtrip-raw.faiss")


def _decode_chip(chips: dict[int, bytes | None], eid: int) -> np.ndarray:
    if eid not in chips:
        raise ForensicsError("the gallery changed while round-trip vectors were being computed; run again "
                             "(the vectors computed so far are kept)")
    png = chips[eid]
    if png is None:
        raise ForensicsError(f"gallery face of embedding {eid} has no stored chip; re-enroll its image "
                             "to use the roundtrip mode")
    with Image.open(io.BytesIO(png)) as im:
        return np.asarray(im.convert("RGB"))


def roundtrip_index(repo, gallery_path: Path, embedder, inverter, whitening,
                    progress: Callable[[int, int], None] | None = None, chunk: int = 256) -> VectorIndex:
    """The round-trip index beside the gallery: loaded if current, else brought up to date.

    Vectors of faces already in the previous index (same space) are kept; the others are
    computed from their stored chips, `chunk` faces at a time, and the index is saved after
    each chunk (marked stale until the last), so an interrupted build resumes where it stopped.
    `progress(done, total)` is called as faces are computed. Refuses a gallery enrolled with
    another embedder than `embedder`.
    """
    path = roundtrip_index_path(gallery_path, whitening is not None)
    space = roundtrip_space_id(inverter, whitening)
    info = embedder.info
    emb = repo.ensure_embedder_compatible(info.name, info.version, info.dim)
    if emb is None:
        raise ForensicsError("the gallery is empty: enroll photos first")
    old = None
    try:
        old = VectorIndex.load(path, expected_embedder=emb.key)
    except (IndexCorruptError, EmbedderMismatchError):
        pass
    if old is not None and old.space != space:
        old = None
    with repo.snapshot() as snap:
        fp = snap.gallery_fingerprint(emb)
        if old is not None and old.gallery_fingerprint == fp:
            return old
        ids, _ = snap.iter_embeddings(emb)
    done = np.isin(ids, old.ids()) if old is not None else np.zeros(len(ids), bool)
    vecs = np.zeros((len(ids), emb.dim), np.float32)
    if done.any():
        vecs[done] = old.reconstruct(ids[done])
    todo = np.flatnonzero(~done)
    if progress and len(todo):
        progress(0, len(todo))
    for start in range(0, len(todo), chunk):
        rows = todo[start:start + chunk]
        chips = repo.face_chips(ids[rows].tolist())
        vecs[rows] = roundtrip_vectors(embedder, inverter,
                                       np.stack([_decode_chip(chips, int(e)) for e in ids[rows]]),
                                       whitening)
        done[rows] = True
        if start + chunk < len(todo):  # a checkpoint: stale (no fingerprint) until every face is in
            VectorIndex.build(ids[done], vecs[done], emb.key, FLAT, space=space).save(path)
        if progress:
            progress(min(start + chunk, len(todo)), len(todo))
    vi = VectorIndex.build(ids, vecs, emb.key, FLAT, gallery_fingerprint=fp, space=space)
    vi.save(path)
    return vi


def drop_from_roundtrip_index(gallery_path: Path, embedding_ids) -> None:
    """Remove purged faces' vectors from the round-trip indexes (the rest stays: it is costly to
    compute); an unreadable one is deleted. Nothing of a purged face remains on disk."""
    for path in (roundtrip_index_path(gallery_path, True), roundtrip_index_path(gallery_path, False)):
        if not path.exists() and not sidecar_path(path).exists():
            continue
        try:
            vi = VectorIndex.load(path)
        except (IndexCorruptError, EmbedderMismatchError):
            for p in (path, sidecar_path(path)):
                p.unlink(missing_ok=True)
            continue
        vi.remove(np.asarray(list(embedding_ids), dtype=np.int64))
        vi.save(path)  # its fingerprint is now stale: the next use brings it up to date cheaply
