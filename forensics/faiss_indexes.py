"""The FAISS implementation of the vector store (`forensics.indexes`): files beside a SQLite gallery.

| name            | file                            |
|-----------------|---------------------------------|
| `plain`         | `<gallery>.faiss`               |
| `whitened`      | `<gallery>.whitened.faiss`      |
| `roundtrip`     | `<gallery>.roundtrip.faiss`     |
| `roundtrip-raw` | `<gallery>.roundtrip-raw.faiss` |

Each has a JSON sidecar (`<file>.json`) recording what it was built from. The plain and whitened
indexes are rebuilt from the database whenever they are stale (another gallery state, embedder,
space or kind), as the kind kept in the database (`flat`, exact, or `ivf`, approximate). The
round-trip index is always exact (flat), updated incrementally (only new faces computed, with a
checkpoint every 256 faces so an interrupted build resumes) and purged of removed faces in place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from gallery.errors import EmbedderMismatchError, IndexCorruptError
from gallery.index import FLAT, IVF, KINDS, IndexProblem, VectorIndex, check_consistency, load_or_build, sidecar_path

from forensics.indexes import KIND_KEY, ROUNDTRIP_CHUNK, GalleryIndexes, Progress
from forensics.probes import INDEX_PLAIN, INDEX_ROUNDTRIP, INDEX_ROUNDTRIP_RAW, INDEX_WHITENED
from forensics.roundtrip import decode_chip, roundtrip_space_id, roundtrip_vectors

SUFFIXES = {INDEX_PLAIN: ".faiss", INDEX_WHITENED: ".whitened.faiss", INDEX_ROUNDTRIP: ".roundtrip.faiss",
            INDEX_ROUNDTRIP_RAW: ".roundtrip-raw.faiss"}


def index_files(db: Path) -> dict[str, Path]:
    """The derived index files of the gallery database `db`, by index name."""
    return {name: Path(db).with_suffix(suffix) for name, suffix in SUFFIXES.items()}


def foreign_index_files(db: Path) -> list[Path]:
    """Index files (or their sidecars) at the places of `db`'s indexes while `db` itself does not
    exist: they were built from another gallery, and a new gallery must not overwrite them."""
    if Path(db).exists():
        return []
    return [p for path in index_files(db).values() for p in (path, sidecar_path(path)) if p.exists()]


class FaissIndexes(GalleryIndexes):
    """The FAISS files of one SQLite gallery (an in-memory gallery's are built and never saved)."""

    KINDS = KINDS
    DEFAULT_KIND = FLAT

    # -- where ---------------------------------------------------------------------------------

    def path(self, name: str) -> Path | None:
        if name not in SUFFIXES:
            raise ValueError(f"unknown index {name!r}")
        return None if self.gallery.path is None else index_files(self.gallery.path)[name]

    # -- load (rebuilt when stale) -------------------------------------------------------------

    def plain(self) -> VectorIndex:
        return self._load_or_build(INDEX_PLAIN)

    def whitened(self, whitening) -> VectorIndex:
        return self._load_or_build(INDEX_WHITENED, whitening.apply, whitening.space_id)

    def _load_or_build(self, name: str, transform=None, space: str | None = None) -> VectorIndex:
        self.embedder()
        kind, nprobe = self.kind()
        extra = {"nprobe": nprobe} if kind == IVF and nprobe else {}
        path = self.path(name)
        if path is None:  # an in-memory gallery: nothing saved beside it
            return VectorIndex.from_repository(self.repo, kind, transform=transform, space=space, **extra)
        return load_or_build(self.repo, path, kind, transform=transform, space=space, **extra)

    def _load(self, name: str, key) -> VectorIndex | None:
        """The saved index, or None when there is none or it cannot be trusted (then it is rebuilt)."""
        path = self.path(name)
        if path is None:
            return None
        try:
            return VectorIndex.load(path, expected_embedder=key)
        except (IndexCorruptError, EmbedderMismatchError):
            return None

    # -- round-trip vectors --------------------------------------------------------------------

    def roundtrip(self, embedder, inverter, whitening, progress: Progress | None = None,
                  chunk: int = ROUNDTRIP_CHUNK) -> VectorIndex:
        """The round-trip index (sketch search space with a `whitening`, else raw): loaded if
        current, else brought up to date, computing only faces it lacks (refuses a gallery enrolled
        with another embedder than `embedder`)."""
        emb = self.roundtrip_embedder(embedder, inverter)
        name = INDEX_ROUNDTRIP if whitening is not None else INDEX_ROUNDTRIP_RAW
        space = roundtrip_space_id(inverter, whitening)
        old = self._load(name, emb.key)
        old = old if old is not None and old.space == space else None
        with self.repo.snapshot() as snap:
            fp = snap.gallery_fingerprint(emb)
            if old is not None and old.gallery_fingerprint == fp:
                return old
            ids, _ = snap.iter_embeddings(emb)
        build = _RoundtripBuild(self, name, emb, ids, old, space, chunk)
        build.compute(lambda chips: roundtrip_vectors(embedder, inverter, chips, whitening), progress)
        return build.finish(fp)

    # -- upkeep --------------------------------------------------------------------------------

    def refresh(self, whitening=None) -> None:
        """The plain index brought up to date (even with nothing new), as the kind kept; the
        others are brought up to date on their next use. An in-memory gallery keeps none."""
        if self.gallery.path is not None and self.repo.gallery_embedder() is not None:
            self.plain()

    def _rebuild(self, kind: str, nprobe: int | None, whitening) -> VectorIndex:
        for name in (INDEX_PLAIN, INDEX_WHITENED):
            self._delete(name)
        self.gallery.set_meta(KIND_KEY, {"kind": kind, "nprobe": nprobe})
        index = self.plain()
        if whitening is not None:
            self.whitened(whitening)
        return index

    def purge(self, embedding_ids: Iterable[int]) -> None:
        """After faces were removed from the database: nothing of them stays in any index. The
        plain index is rebuilt, the whitened one deleted (the next sketch query rebuilds it), the
        round-trip ones keep their other (costly) vectors."""
        ids = np.asarray(sorted(int(i) for i in embedding_ids), dtype=np.int64)
        for name in (INDEX_ROUNDTRIP, INDEX_ROUNDTRIP_RAW):  # first: an id may be reused by a later face
            self._drop_vectors(name, ids)
        self._delete(INDEX_WHITENED)
        if self.repo.gallery_embedder() is not None:
            self.plain()
        else:
            self._delete(INDEX_PLAIN)

    def check(self) -> dict[str, list[IndexProblem]]:
        """Problems between each saved index and the database, by index name. The plain index is
        kept current by every change, so a missing or stale one is a problem; a derived one that
        is stale is not (it is brought up to date on its next use), but one that claims the current
        gallery state and disagrees with it is."""
        out: dict[str, list[IndexProblem]] = {}
        if self.gallery.path is None:  # an in-memory gallery keeps no index files
            return out
        emb = self.repo.gallery_embedder()
        fp = self.repo.gallery_fingerprint(emb) if emb is not None else None
        for name in SUFFIXES:
            path = self.path(name)
            exists = path is not None and (path.exists() or sidecar_path(path).exists())
            if exists or (name == INDEX_PLAIN and emb is not None):
                out[name] = self._problems(path, fp, derived=name != INDEX_PLAIN)
        return out

    def _problems(self, path: Path, fingerprint: str | None, derived: bool) -> list[IndexProblem]:
        try:
            index = VectorIndex.load(path)
        except IndexCorruptError as e:
            return [IndexProblem("unreadable", str(e), ())]
        if derived and index.gallery_fingerprint != fingerprint:
            return []
        problems = check_consistency(self.repo, index)
        if not problems and fingerprint is not None and index.gallery_fingerprint != fingerprint:
            problems.append(IndexProblem("stale", "the index was built from another state of the gallery", ()))
        return problems

    def _delete(self, name: str) -> None:
        path = self.path(name)
        if path is not None:
            for p in (path, sidecar_path(path)):
                p.unlink(missing_ok=True)

    def _drop_vectors(self, name: str, ids: np.ndarray) -> None:
        path = self.path(name)
        if path is None or (not path.exists() and not sidecar_path(path).exists()):
            return
        try:
            vi = VectorIndex.load(path)
        except (IndexCorruptError, EmbedderMismatchError):
            self._delete(name)
            return
        vi.remove(ids)
        vi.save(path)  # its fingerprint is now stale: the next use brings it up to date cheaply


class _RoundtripBuild:
    """One incremental update of a round-trip index, saved every `chunk` faces."""

    def __init__(self, owner: FaissIndexes, name: str, emb, ids: np.ndarray, old: VectorIndex | None, space: str,
                 chunk: int):
        self.owner, self.name, self.emb, self.ids, self.space, self.chunk = owner, name, emb, ids, space, chunk
        self.done = np.isin(ids, old.ids()) if old is not None else np.zeros(len(ids), bool)
        self.vecs = np.zeros((len(ids), emb.dim), np.float32)
        if self.done.any():
            self.vecs[self.done] = old.reconstruct(ids[self.done])

    def compute(self, vectors_of: Callable[[np.ndarray], np.ndarray], progress: Progress | None) -> None:
        todo = np.flatnonzero(~self.done)
        if progress and len(todo):
            progress(0, len(todo))
        for start in range(0, len(todo), self.chunk):
            rows = todo[start:start + self.chunk]
            chips = self.owner.repo.face_chips(self.ids[rows].tolist())
            self.vecs[rows] = vectors_of(np.stack([decode_chip(chips, int(e)) for e in self.ids[rows]]))
            self.done[rows] = True
            if start + self.chunk < len(todo):  # a checkpoint: stale (no fingerprint) until all are in
                self._save(VectorIndex.build(self.ids[self.done], self.vecs[self.done], self.emb.key, FLAT,
                                             space=self.space))
            if progress:
                progress(min(start + self.chunk, len(todo)), len(todo))

    def finish(self, fingerprint: str) -> VectorIndex:
        vi = VectorIndex.build(self.ids, self.vecs, self.emb.key, FLAT, gallery_fingerprint=fingerprint,
                               space=self.space)
        self._save(vi)
        return vi

    def _save(self, vi: VectorIndex) -> None:
        path = self.owner.path(self.name)
        if path is not None:
            vi.save(path)
