"""The pgvector implementation of the vector store (`forensics.indexes`): a PostgreSQL gallery's
search spaces, stored and searched in the database (`gallery.pgvector`); nothing is kept on a
workstation.

The plain space is written by each enrollment batch in its own transaction. A derived space (the
whitened descriptors, round-trip vectors) is a space of its own, made by the first process that
needs it and then brought up to date by computing only the vectors it lacks (the whitened space
by every enrollment, `refresh`, so that queries find it current; the round-trip one by
enrollment where the gallery's setting says so, else by `gallery roundtrip` or the first
round-trip query), each chunk committed as it is computed. A role that
may not write a space (`forensics_examiner`) searches the vectors it lacks from memory beside the
stored ones (a query while an enrollment runs: the faces enrolled since the last refresh), and
gets a clear error where there is no space at all to search. A space made
for other vectors (another whitening or inverter) is dropped and made anew. Removed faces leave
every space with their embedding rows (ON DELETE CASCADE). Search kinds: `hnsw` (the default)
or `flat` (exact), kept in the database as the FAISS kind is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import numpy as np
from sqlalchemy.orm import Session

from gallery.errors import GalleryPermissionError
from gallery.index import IndexProblem
from gallery.pgvector import (HNSW, KINDS, SpaceRow, PgVectorIndex, drop_space, ensure_space, get_space, index_exists,
                              may_write_vectors, missing_ids, read_vectors, write_vectors)
from gallery.transaction import read_transaction, write_transaction

from forensics.errors import ForensicsError
from forensics.indexes import KIND_KEY, NAMES, ROUNDTRIP_CHUNK, GalleryIndexes, Progress
from forensics.probes import INDEX_PLAIN, INDEX_ROUNDTRIP, INDEX_ROUNDTRIP_RAW, INDEX_WHITENED
from forensics.roundtrip import decode_chip, roundtrip_space_id, roundtrip_vectors

#: Vectors computed and committed together while a space is filled from the stored descriptors.
FILL_CHUNK = 4096


class PgIndexes(GalleryIndexes):
    """The pgvector spaces of one PostgreSQL gallery."""

    KINDS = KINDS
    DEFAULT_KIND = HNSW

    # -- open (brought up to date) -------------------------------------------------------------

    def plain(self) -> PgVectorIndex:
        return self._current(INDEX_PLAIN, None, None)

    def whitened(self, whitening) -> PgVectorIndex:
        return self._current(INDEX_WHITENED, whitening.space_id, whitening.apply)

    def _current(self, name: str, space: str | None, transform) -> PgVectorIndex:
        """The space `name` of `space` vectors, made and filled where it lacks vectors of stored
        descriptors (`transform`: from a descriptor to its vector there; None: the descriptor)."""
        emb = self.embedder()
        row = self._space(name, space, emb)
        pending = self._fill(row, lambda ids: self._derive(ids, transform), FILL_CHUNK, None)
        return PgVectorIndex(self.gallery, row, emb.key, self.kind()[0], pending)

    def _derive(self, ids: np.ndarray, transform) -> np.ndarray:
        stored = self.repo.get_vectors(ids.tolist())
        vecs = np.stack([stored[int(i)] for i in ids])
        return vecs if transform is None else transform(vecs)

    def _space(self, name: str, space: str | None, emb) -> SpaceRow:
        with read_transaction(self.gallery) as s:
            row = get_space(s, name)
        if row is not None and (row.space, row.dim, row.embedder_id) == (space, emb.dim, emb.id):
            return row
        with self._writing(name) as s:
            return ensure_space(s, name, space, emb.dim, emb.id)

    def _fill(self, row: SpaceRow, vectors_of: Callable[[np.ndarray], np.ndarray], chunk: int,
              progress: Progress | None) -> tuple[np.ndarray, np.ndarray] | None:
        """Compute and store the vectors the space lacks, `chunk` at a time (each committed). A
        role that may not store them (an examiner's, while an enrollment runs) keeps them for its
        own search: returned as (ids, vectors), else None."""
        with read_transaction(self.gallery) as s:
            todo = missing_ids(s, row)
            may_store = may_write_vectors(s)
        if progress and len(todo):
            progress(0, len(todo))
        kept: list[tuple[np.ndarray, np.ndarray]] = []
        for start in range(0, len(todo), chunk):
            ids = todo[start:start + chunk]
            vecs = vectors_of(ids)
            if may_store:
                with write_transaction(self.gallery) as s:
                    write_vectors(s, row, ids.tolist(), vecs)
            else:
                kept.append((ids, vecs))
            if progress:
                progress(min(start + chunk, len(todo)), len(todo))
        if not kept:
            return None
        return np.concatenate([i for i, _ in kept]), np.concatenate([v for _, v in kept])

    @contextmanager
    def _writing(self, name: str) -> Iterator[Session]:
        """A write transaction on the space `name`; a role that may not write it (an examiner's)
        gets a clear error."""
        try:
            with write_transaction(self.gallery) as s:
                yield s
        except GalleryPermissionError as exc:
            raise ForensicsError(f"the {name} vectors of the gallery {self.gallery.location} are not up to date "
                                 "and this database role may not write them: an administrator runs `forensics "
                                 "gallery rebuild-index` (or `forensics gallery roundtrip` for round-trip vectors)"
                                 ) from exc

    # -- round-trip vectors --------------------------------------------------------------------

    def roundtrip(self, embedder, inverter, whitening, progress: Progress | None = None,
                  chunk: int = ROUNDTRIP_CHUNK) -> PgVectorIndex:
        emb = self.roundtrip_embedder(embedder, inverter)
        name = INDEX_ROUNDTRIP if whitening is not None else INDEX_ROUNDTRIP_RAW
        row = self._space(name, roundtrip_space_id(inverter, whitening), emb)

        def vectors_of(ids: np.ndarray) -> np.ndarray:
            chips = self.repo.face_chips(ids.tolist())
            return roundtrip_vectors(embedder, inverter, np.stack([decode_chip(chips, int(e)) for e in ids]),
                                     whitening)

        self._fill(row, vectors_of, chunk, progress)
        return PgVectorIndex(self.gallery, row, emb.key, self.kind()[0])

    # -- upkeep --------------------------------------------------------------------------------

    def refresh(self, whitening=None) -> None:
        """The plain space (written by enrollment; filled here only where a copy lacks it) and,
        with a `whitening`, the whitened one, so that sketch queries find it current."""
        if self.repo.gallery_embedder() is not None:
            self.plain()
            if whitening is not None:
                self.whitened(whitening)

    def _rebuild(self, kind: str, nprobe: int | None, whitening) -> PgVectorIndex:
        if nprobe is not None:
            raise ForensicsError("--nprobe sets FAISS's ivf index; a PostgreSQL gallery searches with hnsw or flat")
        with write_transaction(self.gallery) as s:  # a role that may not: the gallery's refusal, as it is
            for name in (INDEX_PLAIN, INDEX_WHITENED):
                drop_space(s, name)
        self.gallery.set_meta(KIND_KEY, {"kind": kind, "nprobe": None})
        index = self.plain()
        if whitening is not None:
            self.whitened(whitening)
        return index

    def purge(self, embedding_ids: Iterable[int]) -> None:
        """Nothing to do: a removed face's vectors went with its embedding row, in every space
        (ON DELETE CASCADE), in the removal's own transaction."""

    def check(self) -> dict[str, list[IndexProblem]]:
        """Per space: its HNSW index missing; for the plain space also stored descriptors it lacks
        or holds otherwise. A derived space lacking vectors is not a problem (filled on its next
        use), and its vectors are transformed by design."""
        emb = self.repo.gallery_embedder()
        out: dict[str, list[IndexProblem]] = {}
        with read_transaction(self.gallery) as s:
            rows = {name: get_space(s, name) for name in NAMES}
            for name, row in rows.items():
                if row is not None:
                    out[name] = [] if index_exists(s, row) else [
                        IndexProblem("missing_index", f"the HNSW index {row.index_name} is missing", ())]
        if emb is not None:
            out.setdefault(INDEX_PLAIN, []).extend(self._plain_problems(rows[INDEX_PLAIN], emb))
        return out

    def _plain_problems(self, row: SpaceRow | None, emb) -> list[IndexProblem]:
        lacking, differing = [], []
        for ids, vecs in self.repo.iter_embedding_batches(emb):
            with read_transaction(self.gallery) as s:
                held = read_vectors(s, row, ids.tolist()) if row is not None else {}
            for eid, vec in zip(ids.tolist(), vecs):
                if eid not in held:
                    lacking.append(eid)
                elif np.max(np.abs(held[eid] - vec / np.linalg.norm(vec))) > 1e-5:
                    differing.append(eid)
        problems = []
        if lacking:
            problems.append(IndexProblem("missing_ids", f"{len(lacking)} gallery vectors are not in the plain "
                                         "space (filled on its next use)", tuple(lacking)))
        if differing:
            problems.append(IndexProblem("vector_mismatch", f"{len(differing)} vectors of the plain space differ "
                                         "from the gallery's", tuple(differing)))
        return problems

