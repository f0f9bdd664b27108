"""Embedders and stored vectors: which embedder a gallery holds, the vectors and chips behind
embedding ids, who owns them, the gallery fingerprint and the row counts.

:class:`VectorStore` is the part of :class:`~gallery.repository.GalleryRepository` that reads
them; the module functions taking a ``Session`` are shared with the other storage modules.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable, Iterator, Optional, Sequence, Union

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .errors import EmbedderMismatchError, EnrollmentError, GalleryError
from .models import Embedder, Face, FaceEmbedding, Image, Subject
from .records import EmbedderInfo, EmbedderKey, Owner
from .transaction import Store, bulk_cursor, chunks
from .util import is_sha256_hex

#: The exact search kind, whichever store: every vector compared with the query.
FLAT = "flat"

EmbedderLike = Union[EmbedderInfo, Embedder, int, None]

# --------------------------------------------------------------------------------------------
# Vectors as stored
# --------------------------------------------------------------------------------------------


def normalize_vector(vector: Any, dim: int) -> np.ndarray:
    """``vector`` as a float32 array of length ``dim`` with unit L2 norm (EnrollmentError if not
    finite, wrong length or zero)."""
    v = np.asarray(vector, dtype=np.float64).reshape(-1)
    if v.shape[0] != dim:
        raise EnrollmentError(f"embedding has {v.shape[0]} values, the embedder's dim is {dim}")
    if not np.all(np.isfinite(v)):
        raise EnrollmentError("embedding contains NaN or infinite values")
    norm = float(np.linalg.norm(v))
    if norm == 0.0:
        raise EnrollmentError("embedding is all zeros (cannot be normalised)")
    return (v / norm).astype("<f4")


def vector_to_bytes(vector: np.ndarray) -> bytes:
    """The storage form of a (normalised) vector: little-endian float32 bytes."""
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def vector_from_bytes(blob: bytes) -> np.ndarray:
    """The float32 vector stored by :func:`vector_to_bytes`."""
    return np.frombuffer(blob, dtype="<f4")


def unit_rows(vectors: Any, dim: int) -> np.ndarray:
    """`vectors` (n, dim) or (dim,) as unit float32 rows; refuses another dimension, NaN, zeros."""
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim == 1:
        x = x.reshape(1, -1)
    if x.ndim != 2 or (x.shape[0] and x.shape[1] != dim):
        raise EmbedderMismatchError(
            f"vectors have shape {x.shape}, the index's embedder has dim {dim}"
        )
    if x.shape[0] == 0:
        return np.empty((0, dim), np.float32)
    if not np.all(np.isfinite(x)):
        raise ValueError("vectors contain NaN or infinite values")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("a vector is all zeros")
    return np.ascontiguousarray(x / norms, dtype=np.float32)


def check_embedder(held: EmbedderKey, embedder_key: Any) -> None:
    """Refuses queries embedded with another embedder than the vectors `held` (None: not checked)."""
    if embedder_key is None:
        return
    key = EmbedderKey.coerce(embedder_key)
    if key != held:
        raise EmbedderMismatchError(
            f"the index holds vectors of {held}, the query was embedded with "
            f"{key}; scores between different embedders are meaningless. Use the gallery's "
            "embedder (or re-enroll the gallery with the new one)."
        )


# --------------------------------------------------------------------------------------------
# Embedders (session level, shared with enrollment and queries)
# --------------------------------------------------------------------------------------------


def embedder_info(e: Embedder) -> EmbedderInfo:
    """The detached record of an ``embedders`` row."""
    return EmbedderInfo(e.name, e.version, e.dim, e.weights_sha256, id=e.id)


def embedder_id(embedder: EmbedderLike) -> int:
    """The database id of an embedder given as a record, a row or an id."""
    if isinstance(embedder, (int, np.integer)):
        return int(embedder)
    return int(embedder.id)  # type: ignore[union-attr]


def gallery_embedder_row(s: Session) -> Optional[Embedder]:
    """The one embedder whose vectors are stored (None while there are none)."""
    ids = list(s.scalars(select(FaceEmbedding.embedder_id).distinct().limit(2)))
    if not ids:
        return None
    if len(ids) > 1:
        raise GalleryError(
            "the gallery holds vectors of more than one embedder; it must be re-enrolled "
            "with a single embedder"
        )
    return s.get(Embedder, ids[0])


def resolve_embedder(s: Session, embedder: EmbedderLike) -> Optional[Embedder]:
    """The row of ``embedder``, or of the gallery's embedder when it is None."""
    if embedder is None:
        return gallery_embedder_row(s)
    e = s.get(Embedder, embedder_id(embedder))
    if e is None:
        raise GalleryError(f"unknown embedder {embedder!r}")
    return e


def mismatch_message(have: Union[Embedder, EmbedderInfo], name: str, version: str, dim: int) -> str:
    """Why vectors of (name, version, dim) may not join a gallery enrolled with ``have``."""
    return (
        f"the gallery was enrolled with embedder {have.name}@{have.version} (dim {have.dim}), "
        f"but this run uses {name}@{version} (dim {dim}). Vectors of different embedders are "
        "not comparable and are never mixed: use the gallery's embedder, or re-enroll the "
        "whole gallery into a new database with the new one."
    )


def _check_registered(e: Embedder, dim: int, weights_sha256: Optional[str]) -> None:
    """Refuse (name, version) registered with another dim or other known weights."""
    if e.dim != dim:
        raise EmbedderMismatchError(
            f"embedder {e.name}@{e.version} is registered with dim {e.dim}, not {dim}; "
            "a model with a different output size needs a new version label"
        )
    if weights_sha256 and e.weights_sha256 and e.weights_sha256 != weights_sha256:
        raise EmbedderMismatchError(
            f"embedder {e.name}@{e.version} is registered with weights "
            f"{e.weights_sha256[:12]}…, but these weights are {weights_sha256[:12]}…; "
            "different weights under the same version label would silently mix "
            "incomparable vectors (give the new weights a new version)"
        )


def _vector_batches(cur: Any, dim: int, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    while True:
        rows = cur.fetchmany(batch_size)
        if not rows:
            break
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        blob = b"".join(r[1] for r in rows)
        if len(blob) != len(rows) * dim * 4:
            raise GalleryError(
                f"stored vectors do not all have {dim} float32 values; the gallery is damaged"
            )
        yield ids, np.frombuffer(blob, dtype="<f4").reshape(len(rows), dim).copy()


_OWNER_COLUMNS = (
    FaceEmbedding.id, Subject.external_id, Subject.name, Subject.id, Image.sha256, Image.id,
    Face.id, Subject.sex, Subject.birth_year, Subject.meta,
)


class VectorStore(Store):
    """Embedders, vectors, chips, owners, fingerprint and counts of a gallery."""

    # -- embedders ----------------------------------------------------------------------------

    def get_or_create_embedder(
        self, name: str, version: str, dim: int, weights_sha256: Optional[str] = None
    ) -> EmbedderInfo:
        """The ``embedders`` row for (name, version), created if new.

        Raises EmbedderMismatchError if a row with that name/version exists with another
        ``dim`` or another known ``weights_sha256`` (same version label, different model).
        """
        dim = int(dim)
        if dim <= 0:
            raise ValueError("embedder dim must be positive")
        if weights_sha256 is not None and not is_sha256_hex(weights_sha256):
            raise ValueError("weights_sha256 must be 64 lowercase hex characters")
        with self._write() as s:
            e = s.scalars(
                select(Embedder).where(Embedder.name == name, Embedder.version == version)
            ).one_or_none()
            if e is None:
                e = Embedder(name=name, version=version, dim=dim, weights_sha256=weights_sha256)
                s.add(e)
                s.flush()
                return embedder_info(e)
            _check_registered(e, dim, weights_sha256)
            if weights_sha256 and not e.weights_sha256:
                e.weights_sha256 = weights_sha256
            return embedder_info(e)

    def gallery_embedder(self) -> Optional[EmbedderInfo]:
        """The one embedder whose vectors are in the gallery; None while it holds none."""
        with self._read() as s:
            e = gallery_embedder_row(s)
            return None if e is None else embedder_info(e)

    def ensure_embedder_compatible(
        self, name: str, version: str, dim: int, weights_sha256: Optional[str] = None
    ) -> Optional[EmbedderInfo]:
        """Check that vectors of (name, version, dim) may be added to / compared with the gallery.

        Returns the gallery's embedder (None for an empty gallery); raises
        EmbedderMismatchError when the gallery was enrolled with another embedder, or with the
        same name/version but other weights.
        """
        have = self.gallery_embedder()
        if have is None:
            return None
        if (have.name, have.version, have.dim) != (name, version, int(dim)):
            raise EmbedderMismatchError(mismatch_message(have, name, version, int(dim)))
        if weights_sha256 and have.weights_sha256 and weights_sha256 != have.weights_sha256:
            raise EmbedderMismatchError(
                f"the gallery's embedder {have.name}@{have.version} used weights "
                f"{have.weights_sha256[:12]}…, this run loads {weights_sha256[:12]}…; the "
                "vectors would not be comparable"
            )
        return have

    # -- vectors ------------------------------------------------------------------------------

    def iter_embedding_batches(
        self, embedder: EmbedderLike = None, batch_size: int = 20_000
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(ids int64 (n,), vectors float32 (n, dim))`` batches ordered by id.

        ``embedder`` defaults to the gallery's embedder. Reads one consistent snapshot.
        """
        with self._read() as s:
            e = resolve_embedder(s, embedder)
            if e is None:
                return
            sql = "SELECT id, vector FROM embeddings WHERE embedder_id = ? ORDER BY id"
            with bulk_cursor(s, sql, (e.id,)) as cur:
                yield from _vector_batches(cur, e.dim, batch_size)

    def iter_embeddings(self, embedder: EmbedderLike = None) -> tuple[np.ndarray, np.ndarray]:
        """All vectors of ``embedder`` (default: the gallery's) as ``(ids int64 (N,),
        vectors float32 (N, dim))`` ordered by id; ``(empty, empty (0, 0))`` for an empty gallery.

        Preallocated and filled in batches (about one copy of the data in memory).
        """
        with self._read() as s:
            e = resolve_embedder(s, embedder)
            if e is None:
                return np.empty(0, np.int64), np.empty((0, 0), np.float32)
            n = int(
                s.scalar(
                    select(func.count(FaceEmbedding.id)).where(FaceEmbedding.embedder_id == e.id)
                )
                or 0
            )
            ids = np.empty(n, np.int64)
            vecs = np.empty((n, e.dim), np.float32)
            pos = 0
            # Same session/transaction as the count, so the snapshot is the same.
            for bid, bvec in VectorStore(s).iter_embedding_batches(e.id):
                if pos + len(bid) > n:
                    raise GalleryError("the gallery changed while it was read")
                ids[pos : pos + len(bid)] = bid
                vecs[pos : pos + len(bid)] = bvec
                pos += len(bid)
            if pos != n:
                raise GalleryError("the gallery changed while it was read")
            return ids, vecs

    def get_vectors(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """The stored vectors of the given embedding ids (absent ids are left out)."""
        out: dict[int, np.ndarray] = {}
        stmt = select(FaceEmbedding.id, FaceEmbedding.vector)
        with self._read() as s:
            for chunk in chunks([int(i) for i in ids]):
                for eid, blob in s.execute(stmt.where(FaceEmbedding.id.in_(chunk))):
                    out[eid] = vector_from_bytes(blob).copy()
        return out

    # -- chips and owners ---------------------------------------------------------------------

    def face_chips(self, ids: Sequence[int]) -> dict[int, Optional[bytes]]:
        """The aligned face chip (PNG bytes, None if not stored) behind each given embedding id
        (absent ids are left out)."""
        out: dict[int, Optional[bytes]] = {}
        stmt = select(FaceEmbedding.id, Face.chip_png).join(Face, FaceEmbedding.face_id == Face.id)
        with self._read() as s:
            for chunk in chunks([int(i) for i in ids]):
                for eid, png in s.execute(stmt.where(FaceEmbedding.id.in_(chunk))):
                    out[eid] = None if png is None else bytes(png)
        return out

    def image_chips(self, sha256s: Iterable[str]) -> dict[str, bytes]:
        """The aligned face chip (PNG bytes) of each enrolled image, by image SHA-256.

        An image with several faces gives its first face (lowest id) that has a chip. Images not
        in the gallery (or without a stored chip) are absent from the result.
        """
        wanted = sorted({x.lower() for x in sha256s if x})
        out: dict[str, bytes] = {}
        stmt = (
            select(Image.sha256, Face.chip_png)
            .join(Face, Face.image_id == Image.id)
            .where(Face.chip_png.is_not(None))
            .order_by(Image.sha256, Face.id)
        )
        with self._read() as s:
            for chunk in chunks(wanted):
                for sha, chip in s.execute(stmt.where(Image.sha256.in_(chunk))):
                    out.setdefault(sha, bytes(chip))
        return out

    def embedding_owners(self, ids: Iterable[int]) -> dict[int, Owner]:
        """For each embedding id found, who it belongs to (:class:`~gallery.records.Owner`:
        external id, name, subject id, image sha256, image id, face id, sex, birth year,
        meta, embedding id). Unknown ids (e.g. removed subjects) are left out."""
        id_list = sorted({int(i) for i in ids if int(i) >= 0})
        out: dict[int, Owner] = {}
        stmt = (
            select(*_OWNER_COLUMNS)
            .join(Face, FaceEmbedding.face_id == Face.id)
            .join(Image, Face.image_id == Image.id)
            .join(Subject, Image.subject_id == Subject.id)
        )
        with self._read() as s:
            for chunk in chunks(id_list):
                for row in s.execute(stmt.where(FaceEmbedding.id.in_(chunk))):
                    eid, ext, name, sid, sha, iid, fid, sex, by, meta = row
                    out[eid] = Owner(ext, name, sid, sha, iid, fid, sex, by, dict(meta or {}), eid)
        return out

    # -- state --------------------------------------------------------------------------------

    def gallery_fingerprint(self, embedder: EmbedderLike = None) -> str:
        """SHA-256 (hex) of the gallery state searched with ``embedder`` (default: the gallery's).

        Hashes a header line ``embedder:<name>@<version>:<dim>`` (``embedder:none`` when the
        gallery is empty) followed by one ``<embedding id>:<image sha256>`` line per vector in id
        order, so it changes whenever a vector is added or removed or the embedder changes.
        """
        h = hashlib.sha256()
        with self._read() as s:
            e = resolve_embedder(s, embedder)
            if e is None:
                h.update(b"embedder:none\n")
                return h.hexdigest()
            h.update(f"embedder:{e.name}@{e.version}:{e.dim}\n".encode())
            sql = ("SELECT e.id, i.sha256 FROM embeddings e JOIN faces f ON e.face_id = f.id "
                   "JOIN images i ON f.image_id = i.id WHERE e.embedder_id = ? ORDER BY e.id")
            with bulk_cursor(s, sql, (e.id,)) as cur:
                while rows := cur.fetchmany(20_000):
                    h.update("".join(f"{r[0]}:{r[1]}\n" for r in rows).encode())
        return h.hexdigest()

    def count_subjects(self) -> int:
        """Number of subjects."""
        return self._count(select(func.count(Subject.id)))

    def count_subjects_with_vectors(self) -> int:
        """Number of subjects with at least one stored vector (those a search covers)."""
        return self._count(select(func.count(func.distinct(Image.subject_id)))
                           .join(Face, Face.image_id == Image.id).join(FaceEmbedding, FaceEmbedding.face_id == Face.id))

    def count_images(self) -> int:
        """Number of enrolled images."""
        return self._count(select(func.count(Image.id)))

    def count_faces(self) -> int:
        """Number of stored faces."""
        return self._count(select(func.count(Face.id)))

    def count_embeddings(self, embedder: EmbedderLike = None) -> int:
        """Number of stored vectors (of ``embedder`` when given, else of all embedders)."""
        stmt = select(func.count(FaceEmbedding.id))
        if embedder is not None:
            stmt = stmt.where(FaceEmbedding.embedder_id == embedder_id(embedder))
        return self._count(stmt)

    def _count(self, stmt: Any) -> int:
        with self._read() as s:
            return int(s.scalar(stmt) or 0)


__all__ = [
    "FLAT",
    "EmbedderLike",
    "VectorStore",
    "check_embedder",
    "embedder_id",
    "embedder_info",
    "gallery_embedder_row",
    "mismatch_message",
    "normalize_vector",
    "resolve_embedder",
    "unit_rows",
    "vector_from_bytes",
    "vector_to_bytes",
]
