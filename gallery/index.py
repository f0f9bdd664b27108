"""The FAISS vector index: derived from the database, keyed by embedding id, rebuildable.

The database (``embeddings`` table) is the source of truth; this index is a cache for fast
search. It is tied to one embedder (:class:`~gallery.records.EmbedderKey`) and refuses queries
from another. Vectors are L2-normalised, so inner product = cosine similarity.

Kinds:

* ``"flat"`` (default): ``IndexIDMap2(IndexFlatIP)``, exact search.
* ``"ivf"``: ``IndexIVFFlat`` (inner product) with ``nlist ~ 4*sqrt(N)`` lists trained on the
  vectors, ids stored in the inverted lists, a hashtable direct map for reconstruct/remove;
  ``nprobe`` (lists visited per query) trades speed for recall.

On disk (where: `forensics.indexes`, the owner of a gallery's indexes): ``<name>.faiss``
(FAISS's own format) plus ``<name>.faiss.json``, a sidecar recording the
embedder, kind, count, a fingerprint of the ids, the gallery fingerprint it was built from and
the SHA-256 of the ``.faiss`` file (so a torn or edited file is refused on load).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence, Union

import faiss
import numpy as np

from .errors import EmbedderMismatchError, GalleryError, IndexCorruptError
from .records import EmbedderKey
from .util import iso_utc, remove_orphans, sha256_file, tool_version
from .vectors import FLAT, check_embedder, unit_rows

if TYPE_CHECKING:  # pragma: no cover
    from .repository import GalleryRepository

IVF = "ivf"
KINDS = (FLAT, IVF)
SIDECAR_FORMAT = "forensics.vector-index"
SIDECAR_VERSION = 1
_NONE = type(None)
#: The type of each sidecar field that is read back: anything else is a clear error.
SIDECAR_TYPES: dict[str, tuple[type, ...]] = {
    "format_version": (int,), "embedder": (dict,), "kind": (str,), "count": (int,), "ids_fingerprint": (str,),
    "nlist": (int, _NONE), "nprobe": (int, _NONE), "gallery_fingerprint": (str, _NONE), "space": (str, _NONE),
    "index_sha256": (str, _NONE),
}

PathLike = Union[str, Path]


def sidecar_path(index_path: PathLike) -> Path:
    """The JSON sidecar of an index file: ``gallery.faiss`` -> ``gallery.faiss.json``."""
    p = Path(index_path)
    return p.with_name(p.name + ".json")


def ids_fingerprint(ids: np.ndarray) -> str:
    """SHA-256 (hex) of the sorted ids as little-endian int64 bytes."""
    arr = np.sort(np.asarray(ids, dtype=np.int64)).astype("<i8")
    return hashlib.sha256(arr.tobytes()).hexdigest()


def default_nlist(n: int) -> int:
    """IVF list count for ``n`` vectors: about ``4*sqrt(n)``, but at least 39 training points
    per list (FAISS's k-means minimum) and at least 1."""
    if n <= 0:
        return 1
    return int(max(1, min(round(4 * math.sqrt(n)), n // 39)))


def default_nprobe(nlist: int) -> int:
    """Lists visited per query by default: an eighth of them, at least 8 (all when fewer)."""
    return int(min(nlist, max(8, nlist // 8)))


def _as_ids(ids: Any) -> np.ndarray:
    arr = np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))
    if arr.size and arr.min() < 0:
        raise ValueError("embedding ids must be non-negative")
    return arr


@dataclass(frozen=True)
class IndexProblem:
    """One disagreement between the index and the database.

    ``kind``: ``"embedder_mismatch"``, ``"missing_ids"`` (in the DB, not in the index),
    ``"extra_ids"`` (in the index, not in the DB) or ``"vector_mismatch"``; ``message`` says it
    in words; ``ids`` lists the embedding ids concerned.
    """

    kind: str
    message: str
    ids: tuple[int, ...] = field(default=())

    def __str__(self) -> str:
        return self.message


class VectorIndex:
    """A FAISS index of L2-normalised vectors keyed by embedding id, tied to one embedder.

    ``embedder``: the :class:`EmbedderKey` (name, version, dim) its vectors come from;
    ``kind``: ``"flat"`` or ``"ivf"``; ``gallery_fingerprint``: the database state it was built
    from (None if unknown). Build with :meth:`build` / :meth:`from_repository`, persist with
    :meth:`save` / :meth:`load`.
    """

    def __init__(
        self,
        index: "faiss.Index",
        embedder: Any,
        kind: str = FLAT,
        *,
        ids: Optional[np.ndarray] = None,
        nprobe: Optional[int] = None,
        gallery_fingerprint: Optional[str] = None,
        space: Optional[str] = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"index kind must be one of {KINDS}, not {kind!r}")
        self.embedder: EmbedderKey = EmbedderKey.coerce(embedder)
        if index.d != self.embedder.dim:
            raise EmbedderMismatchError(
                f"FAISS index has dim {index.d}, embedder {self.embedder} has dim "
                f"{self.embedder.dim}"
            )
        self.kind = kind
        self._index = index
        self.gallery_fingerprint = gallery_fingerprint
        self.space = space
        self._ids = np.sort(self._extract_ids() if ids is None else _as_ids(ids))
        if kind == IVF:
            self.nprobe = default_nprobe(self.nlist) if nprobe is None else nprobe

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        ids: Any,
        vectors: Any,
        embedder_key: Any,
        kind: str = FLAT,
        *,
        nlist: Optional[int] = None,
        nprobe: Optional[int] = None,
        gallery_fingerprint: Optional[str] = None,
        space: Optional[str] = None,
        seed: int = 1234,
        max_train: int = 64,
        train_iters: int = 15,
    ) -> "VectorIndex":
        """An index of ``vectors`` (N, dim) under ``ids`` (N,) for ``embedder_key``.

        Vectors are L2-normalised (copies). ``kind="ivf"`` trains ``nlist`` lists (default
        :func:`default_nlist`) on at most ``max_train * nlist`` of the vectors, deterministically
        (``seed``), with ``train_iters`` k-means iterations; ``nprobe`` defaults to
        :func:`default_nprobe`. Ids must be unique. ``space``: what the vectors are, when they are
        not the embedder's own (e.g. a whitening's id); recorded in the sidecar.
        """
        key = EmbedderKey.coerce(embedder_key)
        id_arr = _as_ids(ids)
        x = unit_rows(vectors, key.dim)
        if x.shape[0] != id_arr.shape[0]:
            raise ValueError(f"{id_arr.shape[0]} ids for {x.shape[0]} vectors")
        if np.unique(id_arr).shape[0] != id_arr.shape[0]:
            raise ValueError("embedding ids must be unique")
        if kind == FLAT:
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(key.dim))
            if x.shape[0]:
                index.add_with_ids(x, id_arr)
            return cls(index, key, FLAT, ids=id_arr, gallery_fingerprint=gallery_fingerprint, space=space)
        if kind != IVF:
            raise ValueError(f"index kind must be one of {KINDS}, not {kind!r}")
        n = x.shape[0]
        nlist = default_nlist(n) if nlist is None else int(nlist)
        if n < nlist or n == 0:
            raise GalleryError(
                f"cannot train an IVF index with {nlist} lists on {n} vectors; "
                "use kind='flat' for small galleries"
            )
        quantizer = faiss.IndexFlatIP(key.dim)
        index = faiss.IndexIVFFlat(quantizer, key.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = int(seed)
        index.cp.niter = int(train_iters)
        train = x
        if n > max_train * nlist:
            rng = np.random.default_rng(seed)
            train = x[np.sort(rng.choice(n, max_train * nlist, replace=False))]
        index.train(train)
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
        index.add_with_ids(x, id_arr)
        return cls(
            index, key, IVF, ids=id_arr, nprobe=nprobe, gallery_fingerprint=gallery_fingerprint, space=space
        )

    @classmethod
    def from_repository(
        cls,
        repo: "GalleryRepository",
        kind: str = FLAT,
        *,
        transform: Optional[Callable[[np.ndarray], np.ndarray]] = None,
        space: Optional[str] = None,
        **build_kw: Any,
    ) -> "VectorIndex":
        """Rebuild the index from the database: all vectors of the gallery's embedder, with the
        current gallery fingerprint recorded. Raises GalleryError if the gallery has no vectors
        (nothing tells which embedder the index would be for).

        ``transform`` maps the stored vectors (n, dim) into another space of the same dimension
        before indexing (a derived index, e.g. whitened for sketch queries); ``space`` names it.
        """
        if (transform is None) != (space is None):
            raise ValueError("give both transform and space, or neither")
        with repo.snapshot() as snap:  # fingerprint and vectors from the same DB state
            emb = snap.gallery_embedder()
            if emb is None:
                raise GalleryError("the gallery holds no vectors yet; enroll images first")
            fp = snap.gallery_fingerprint(emb)
            ids, vecs = snap.iter_embeddings(emb)
        if transform is not None and len(ids):
            vecs = transform(vecs)
        if kind == FLAT or len(ids):
            return cls.build(ids, vecs, emb.key, kind, gallery_fingerprint=fp, space=space, **build_kw)
        return cls.build(ids, vecs, emb.key, FLAT, gallery_fingerprint=fp, space=space)

    # -- facts --------------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return self.embedder.dim

    @property
    def ntotal(self) -> int:
        """Number of vectors held."""
        return int(self._index.ntotal)

    def __len__(self) -> int:
        return self.ntotal

    @property
    def nlist(self) -> Optional[int]:
        """Number of IVF lists (None for a flat index)."""
        return int(self._index.nlist) if self.kind == IVF else None

    @property
    def nprobe(self) -> Optional[int]:
        """IVF lists visited per query (None for a flat index)."""
        return int(self._index.nprobe) if self.kind == IVF else None

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        if self.kind != IVF:
            raise ValueError("nprobe applies to IVF indexes only")
        nlist = int(self._index.nlist)
        self._index.nprobe = int(max(1, min(int(value), nlist)))

    def ids(self) -> np.ndarray:
        """The embedding ids held, sorted (int64 copy)."""
        return self._ids.copy()

    def ids_fingerprint(self) -> str:
        """:func:`ids_fingerprint` of the ids held."""
        return ids_fingerprint(self._ids)

    def _extract_ids(self) -> np.ndarray:
        idx = self._index
        if isinstance(idx, faiss.IndexIDMap2) or isinstance(idx, faiss.IndexIDMap):
            return faiss.vector_to_array(idx.id_map).astype(np.int64)
        ivf = faiss.extract_index_ivf(idx)
        inv = ivf.invlists
        parts = []
        for lst in range(ivf.nlist):
            n = inv.list_size(lst)
            if n:
                ptr = inv.get_ids(lst)
                parts.append(faiss.rev_swig_ptr(ptr, n).astype(np.int64).copy())
                inv.release_ids(lst, ptr)
        return np.concatenate(parts) if parts else np.empty(0, np.int64)

    # -- search / update ----------------------------------------------------------------------

    def _check_key(self, embedder_key: Any) -> None:
        check_embedder(self.embedder, embedder_key)

    def search(
        self, queries: Any, k: int, *, embedder_key: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best gallery vectors for each query (by cosine similarity).

        ``queries``: (m, dim) or (dim,), normalised here. ``embedder_key``: the embedder the
        queries come from; a different one raises EmbedderMismatchError. Returns
        ``(scores float32 (m, k'), ids int64 (m, k'))`` best first, ``k' = min(k, ntotal)``;
        an IVF index may pad with id -1 / score -inf when the visited lists hold fewer vectors.
        """
        self._check_key(embedder_key)
        q = unit_rows(queries, self.dim)
        kk = int(min(int(k), self.ntotal))
        m = q.shape[0]
        if kk <= 0 or m == 0:
            return np.empty((m, 0), np.float32), np.empty((m, 0), np.int64)
        scores, ids = self._index.search(q, kk)
        scores = np.asarray(scores, dtype=np.float32)
        ids = np.asarray(ids, dtype=np.int64)
        scores[ids < 0] = -np.inf
        return scores, ids

    def add(self, ids: Any, vectors: Any, *, embedder_key: Any = None) -> None:
        """Add vectors (normalised here) under new ids; an id already held raises ValueError."""
        self._check_key(embedder_key)
        id_arr = _as_ids(ids)
        x = unit_rows(vectors, self.dim)
        if x.shape[0] != id_arr.shape[0]:
            raise ValueError(f"{id_arr.shape[0]} ids for {x.shape[0]} vectors")
        if not id_arr.size:
            return
        if np.unique(id_arr).shape[0] != id_arr.shape[0] or np.isin(id_arr, self._ids).any():
            raise ValueError("embedding ids must be unique and not already in the index")
        self._index.add_with_ids(x, id_arr)
        self._ids = np.sort(np.concatenate([self._ids, id_arr]))
        self.gallery_fingerprint = None

    def remove(self, ids: Any) -> int:
        """Remove the given ids (unknown ids are ignored); returns how many were removed."""
        id_arr = np.unique(_as_ids(ids))
        id_arr = id_arr[np.isin(id_arr, self._ids)]
        if not id_arr.size:
            return 0
        id_arr = np.ascontiguousarray(id_arr)
        if self.kind == IVF:
            sel = faiss.IDSelectorArray(id_arr.size, faiss.swig_ptr(id_arr))
            n = int(self._index.remove_ids(sel))
        else:
            n = int(self._index.remove_ids(id_arr))
        self._ids = self._ids[~np.isin(self._ids, id_arr)]
        self.gallery_fingerprint = None
        return n

    def contains(self, ids: Any) -> np.ndarray:
        """For each of ``ids``, whether the index holds it."""
        return np.isin(np.asarray(ids, dtype=np.int64).reshape(-1), self._ids)

    def reconstruct(self, ids: Any) -> np.ndarray:
        """The stored (normalised) vectors of ``ids`` as float32 (n, dim); KeyError if one is absent."""
        id_arr = _as_ids(ids)
        missing = id_arr[~np.isin(id_arr, self._ids)]
        if missing.size:
            raise KeyError(f"ids not in the index: {missing[:10].tolist()}")
        if not id_arr.size:
            return np.empty((0, self.dim), np.float32)
        return np.asarray(self._index.reconstruct_batch(id_arr), dtype=np.float32).reshape(
            -1, self.dim
        )

    # -- persistence --------------------------------------------------------------------------

    def sidecar(self, index_sha256: Optional[str] = None) -> dict[str, Any]:
        """The JSON sidecar describing this index (written by :meth:`save`)."""
        return {
            "format": SIDECAR_FORMAT,
            "format_version": SIDECAR_VERSION,
            "embedder": self.embedder.as_dict(),
            "kind": self.kind,
            "metric": "inner_product",
            "count": self.ntotal,
            "ids_fingerprint": self.ids_fingerprint(),
            "nlist": self.nlist,
            "nprobe": self.nprobe,
            "gallery_fingerprint": self.gallery_fingerprint,
            "space": self.space,
            "index_sha256": index_sha256,
            "faiss_version": getattr(faiss, "__version__", None),
            "tool_version": tool_version(),
            "saved_at": iso_utc(),
        }

    def save(self, path: PathLike, *, gallery_fingerprint: Optional[str] = None) -> Path:
        """Write the index to ``path`` (e.g. ``gallery.faiss``) and its sidecar ``path.json``.

        Both are written to temporary files, synced and renamed into place; the sidecar records
        the SHA-256 of the index file, so a half-replaced pair is detected on load.
        ``gallery_fingerprint`` overrides the recorded database state.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        side = sidecar_path(path)
        for p in (path, side):
            if p.is_dir():
                raise IndexCorruptError(f"the index path {p} is a directory, not an index file: move it "
                                        "away (the index is rebuilt from the database)")
        remove_stale_temporaries(path)
        if gallery_fingerprint is not None:
            self.gallery_fingerprint = gallery_fingerprint
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        side_tmp = side.with_name(f".{side.name}.tmp-{os.getpid()}")
        try:
            faiss.write_index(self._index, str(tmp))
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            meta = self.sidecar(index_sha256=sha256_file(tmp))
            with open(side_tmp, "w", encoding="utf-8") as fh:
                fh.write(json.dumps(meta, indent=2, sort_keys=True) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            os.replace(side_tmp, side)
        finally:
            for p in (tmp, side_tmp):
                if p.exists():
                    p.unlink()
        return path

    @classmethod
    def read_sidecar(cls, path: PathLike) -> dict[str, Any]:
        """The sidecar of the index at ``path``; IndexCorruptError if missing or unreadable."""
        side = sidecar_path(path)
        try:
            meta = json.loads(side.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise IndexCorruptError(f"index sidecar {side} is missing; rebuild the index") from exc
        except (OSError, ValueError) as exc:
            raise IndexCorruptError(f"index sidecar {side} is unreadable ({exc})") from exc
        if not isinstance(meta, dict) or meta.get("format") != SIDECAR_FORMAT:
            raise IndexCorruptError(f"{side} is not a forensics index sidecar")
        for name, types in SIDECAR_TYPES.items():
            if name in meta and not isinstance(meta[name], types):
                wanted = " or ".join("null" if t is _NONE else t.__name__ for t in types)
                raise IndexCorruptError(f"index sidecar {side}: field {name!r} is {str(meta[name])[:40]!r}, "
                                        f"not {wanted}; rebuild the index (`forensics gallery rebuild-index`)")
        if meta.get("format_version", 0) > SIDECAR_VERSION:
            raise IndexCorruptError(
                f"{side} was written by a newer forensics (sidecar format "
                f"{meta.get('format_version')}); upgrade forensics or rebuild the index"
            )
        return meta

    @classmethod
    def load(cls, path: PathLike, *, expected_embedder: Any = None) -> "VectorIndex":
        """Read an index saved by :meth:`save`, checking it against its sidecar.

        Raises IndexCorruptError when a file is missing, the index file's SHA-256, count or ids
        differ from the sidecar; EmbedderMismatchError when ``expected_embedder`` is given and
        differs from the index's.
        """
        path = Path(path)
        if path.is_dir():
            raise IndexCorruptError(f"the index path {path} is a directory, not an index file")
        meta = cls.read_sidecar(path)
        if not path.exists():
            raise IndexCorruptError(f"index file {path} is missing; rebuild the index")
        sha = sha256_file(path)
        if meta.get("index_sha256") and sha != meta["index_sha256"]:
            raise IndexCorruptError(
                f"index file {path} does not match its sidecar (SHA-256 {sha[:12]}…, expected "
                f"{str(meta['index_sha256'])[:12]}…); it was modified or half-written: rebuild it"
            )
        try:
            index = faiss.read_index(str(path))
        except Exception as exc:  # faiss raises RuntimeError with a C++ message
            raise IndexCorruptError(f"index file {path} cannot be read by FAISS ({exc})") from exc
        try:
            key = EmbedderKey.coerce(meta["embedder"])
            kind = meta["kind"]
            vi = cls(
                index,
                key,
                kind,
                nprobe=meta.get("nprobe"),
                gallery_fingerprint=meta.get("gallery_fingerprint"),
                space=meta.get("space"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise IndexCorruptError(f"index sidecar of {path} is incomplete ({exc})") from exc
        if vi.ntotal != int(meta.get("count", -1)) or vi.ids_fingerprint() != meta.get(
            "ids_fingerprint"
        ):
            raise IndexCorruptError(
                f"index file {path} holds {vi.ntotal} vectors whose ids do not match its sidecar "
                f"({meta.get('count')} vectors); rebuild the index"
            )
        if expected_embedder is not None:
            vi._check_key(expected_embedder)
        return vi

    def __repr__(self) -> str:
        extra = f" nlist={self.nlist} nprobe={self.nprobe}" if self.kind == IVF else ""
        return f"<VectorIndex {self.kind} {self.embedder} n={self.ntotal}{extra}>"


# --------------------------------------------------------------------------------------------
# DB <-> index
# --------------------------------------------------------------------------------------------


def remove_stale_temporaries(path: PathLike) -> list[Path]:
    """Delete the temporary files :meth:`VectorIndex.save` left beside ``path`` (and its
    sidecar) when a process writing them was killed; those of live processes are kept."""
    path = Path(path)
    return [p for name in (path.name, sidecar_path(path).name)
            for p in remove_orphans(path.parent, f".{name}.tmp-")]


def _short(ids: Sequence[int], n: int = 8) -> str:
    ids = list(ids)
    head = ", ".join(str(i) for i in ids[:n])
    return head + (f", … ({len(ids)} in all)" if len(ids) > n else "")


def check_consistency(
    repo: "GalleryRepository",
    index: VectorIndex,
    *,
    check_vectors: bool = True,
    atol: float = 1e-5,
) -> list[IndexProblem]:
    """Compare the index with the database; an empty list means they agree.

    Finds: a different embedder (``embedder_mismatch``), ids in the DB but not the index
    (``missing_ids``), ids in the index but not the DB (``extra_ids``) and, when
    ``check_vectors``, stored vectors that differ by more than ``atol`` (``vector_mismatch``;
    not for an index in another ``space``, whose vectors are transformed by design).
    The DB is streamed in batches.
    """
    emb = repo.gallery_embedder()
    idx_ids = index.ids()
    if emb is None:
        return [_ids_problem("extra_ids", idx_ids, "the gallery holds no vectors but the index holds {n}: {ids}")]\
            if idx_ids.size else []
    if emb.key != index.embedder:
        return [IndexProblem("embedder_mismatch",
                             f"the index holds vectors of {index.embedder}, the gallery of {emb.key}")]
    db_ids, differing = _scan_database(repo, emb, index, idx_ids, check_vectors and index.space is None, atol)
    problems = []
    if (missing := np.setdiff1d(db_ids, idx_ids)).size:
        problems.append(_ids_problem("missing_ids", missing, "{n} gallery vectors are not in the index: {ids}"))
    if (extra := np.setdiff1d(idx_ids, db_ids)).size:
        problems.append(_ids_problem("extra_ids", extra, "{n} index vectors are not in the gallery (removed?): {ids}"))
    if differing:
        problems.append(_ids_problem("vector_mismatch", np.asarray(differing),
                                     "{n} index vectors differ from the gallery's: {ids}"))
    return problems


def _scan_database(repo, emb, index: VectorIndex, idx_ids: np.ndarray, check_vectors: bool,
                   atol: float) -> tuple[np.ndarray, list[int]]:
    """(every embedding id in the DB, the ids whose indexed vector differs from the stored one)."""
    db_parts: list[np.ndarray] = []
    differing: list[int] = []
    for ids, vecs in repo.iter_embedding_batches(emb):
        db_parts.append(ids)
        present = np.isin(ids, idx_ids) if check_vectors else np.zeros(len(ids), bool)
        if present.any():
            bad = np.max(np.abs(index.reconstruct(ids[present]) - vecs[present]), axis=1) > atol
            differing.extend(ids[present][bad].tolist())
    return (np.concatenate(db_parts) if db_parts else np.empty(0, np.int64)), differing


def _ids_problem(kind: str, ids: np.ndarray, message: str) -> IndexProblem:
    listed = ids.tolist()
    return IndexProblem(kind, message.format(n=len(listed), ids=_short(listed)), tuple(listed))


def load_or_build(
    repo: "GalleryRepository",
    path: PathLike,
    kind: str = FLAT,
    *,
    save: bool = True,
    transform: Optional[Callable[[np.ndarray], np.ndarray]] = None,
    space: Optional[str] = None,
    **build_kw: Any,
) -> VectorIndex:
    """The index at ``path`` if it is current (same kind, embedder, space and gallery fingerprint
    as the database), else a rebuild from the database (saved to ``path`` when ``save``);
    ``transform``/``space`` as in :meth:`VectorIndex.from_repository`.

    A missing, corrupt or stale index is never an error: the database is the source of truth.
    """
    emb = repo.gallery_embedder()
    if emb is None:
        raise GalleryError("the gallery holds no vectors yet; enroll images first")
    remove_stale_temporaries(path)
    fp = repo.gallery_fingerprint(emb)
    try:
        vi = VectorIndex.load(path, expected_embedder=emb.key)
        if vi.kind == kind and vi.gallery_fingerprint == fp and vi.space == space:
            if "nprobe" in build_kw and build_kw["nprobe"] is not None and kind == IVF:
                vi.nprobe = build_kw["nprobe"]
            return vi
    except (IndexCorruptError, EmbedderMismatchError):
        pass
    vi = VectorIndex.from_repository(repo, kind, transform=transform, space=space, **build_kw)
    if save:
        vi.save(path)
    return vi


__all__ = [
    "FLAT",
    "IVF",
    "IndexProblem",
    "VectorIndex",
    "check_consistency",
    "default_nlist",
    "default_nprobe",
    "ids_fingerprint",
    "load_or_build",
    "remove_stale_temporaries",
    "sidecar_path",
]
