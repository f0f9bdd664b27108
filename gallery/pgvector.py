"""A PostgreSQL gallery's vectors in pgvector, searched in the database (no copy on a workstation).

Tables (migration 0004, PostgreSQL only): ``vector_spaces``, one row per search space, named as
the index it serves (``plain``: the stored descriptors; ``whitened``, ``roundtrip``,
``roundtrip-raw``: derived) with ``space`` (what its vectors are: a whitening's or round-trip's
id, None for ``plain``), the dimension and the embedder; ``space_vectors``, the unit vectors,
keyed by (space, embedding id) and deleted with their embedding (ON DELETE CASCADE).

Each space has its own HNSW index (cosine: ``vector_cosine_ops``), partial (``WHERE space_id =
<id>``) on ``v::vector(dim)``, made and dropped with the space's row by a trigger (migration 0004;
with the table owner's rights, so the enrolling role need not own the table): one gallery table
serves every space, and a space's index holds only its own vectors. Vectors are unit length, so the cosine similarity is
``1 - (a <=> b)``. A search of k <= 1000 (hnsw.ef_search's limit) runs on the index with
``SET LOCAL hnsw.ef_search = max(40, 2k)``; a larger k, a k covering the whole space, or a space
whose search kind is ``flat`` is an exact scan (index scans off), so widening a filtered search to
the whole gallery is exact.

The plain vectors are written by the enrollment batch itself (:func:`add_plain`, same
transaction), so they are never behind the embeddings; the derived ones by their owner
(:mod:`forensics.pg_store`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
from pgvector.sqlalchemy import VECTOR
from sqlalchemy import (CheckConstraint, Column, ForeignKey, Integer, MetaData, String, Table, Text, delete, func,
                        insert, select, text)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from .models import NAMING_CONVENTION, Base, FaceEmbedding
from .records import EmbedderKey
from .transaction import Database, chunks, read_transaction
from .vectors import FLAT, check_embedder, unit_rows

PLAIN = "plain"
HNSW = "hnsw"
#: Search kinds on PostgreSQL: the HNSW index (approximate) or an exact scan.
KINDS = (HNSW, FLAT)
#: hnsw.ef_search's upper limit: a larger k is searched exactly.
MAX_EF_SEARCH = 1000
MIN_EF_SEARCH = 40
#: The advisory lock key taken while a space (and its index) is created (two enrollments at once).
SPACE_LOCK = 0x666f7273  # "fors"


#: The tables of migration 0004 (PostgreSQL only, so not among the models every gallery has).
METADATA = MetaData(naming_convention=NAMING_CONVENTION)
VECTOR_SPACES = Table(
    "vector_spaces", METADATA,
    Column("id", Integer, primary_key=True),
    Column("name", String(40), nullable=False, unique=True),
    Column("space", Text, nullable=True),
    Column("dim", Integer, CheckConstraint("dim > 0", name="dim"), nullable=False),
    Column("embedder_id", Integer, ForeignKey("embedders.id"), nullable=False),
)
SPACE_VECTORS = Table(
    "space_vectors", METADATA,
    Column("space_id", Integer, ForeignKey("vector_spaces.id", ondelete="CASCADE"), primary_key=True),
    Column("embedding_id", Integer, ForeignKey("embeddings.id", ondelete="CASCADE"), primary_key=True, index=True),
    Column("v", VECTOR(), nullable=False),
)
_SPACE_COLUMNS = (VECTOR_SPACES.c.id, VECTOR_SPACES.c.name, VECTOR_SPACES.c.space, VECTOR_SPACES.c.dim,
                  VECTOR_SPACES.c.embedder_id)


def schema(postgres: bool) -> MetaData:
    """Every table a gallery has on the backend: the models', and on PostgreSQL the vector tables."""
    out = MetaData(naming_convention=NAMING_CONVENTION)
    for table in [*Base.metadata.tables.values(), *(METADATA.tables.values() if postgres else ())]:
        table.to_metadata(out)
    return out


def is_postgres(source: Any) -> bool:
    """True when `source` (a Database, Session, Connection or Engine) is on PostgreSQL."""
    bind = source.engine if isinstance(source, Database) else source
    if isinstance(bind, Session):
        bind = bind.get_bind()
    return bind.dialect.name == "postgresql"


@dataclass(frozen=True)
class SpaceRow:
    """One search space: its row id, index name, what its vectors are, dimension and embedder."""

    id: int
    name: str
    space: Optional[str]
    dim: int
    embedder_id: int

    @property
    def index_name(self) -> str:
        return f"space_vectors_hnsw_{self.id}"


def literal(vector: np.ndarray) -> str:
    """pgvector's text form of a float32 vector (exact: each float32 round-trips)."""
    return "[" + ",".join(repr(x) for x in np.asarray(vector, np.float32).tolist()) + "]"


# --------------------------------------------------------------------------------------------
# Spaces
# --------------------------------------------------------------------------------------------


def get_space(s: Session, name: str) -> Optional[SpaceRow]:
    row = s.execute(select(*_SPACE_COLUMNS).where(VECTOR_SPACES.c.name == name)).first()
    return None if row is None else SpaceRow(*row)


def ensure_space(s: Session, name: str, space: Optional[str], dim: int, embedder_id: int) -> SpaceRow:
    """The space called `name` holding `space` vectors, made (with its HNSW index) when there is
    none; one holding other vectors (another whitening, inverter or embedder) is dropped first.
    Two writers at once: the second waits for the first's commit (advisory lock), then finds it."""
    wanted = (space, int(dim), int(embedder_id))
    found = get_space(s, name)
    if found is not None and (found.space, found.dim, found.embedder_id) == wanted:
        return found
    s.execute(select(func.pg_advisory_xact_lock(SPACE_LOCK)))
    found = get_space(s, name)
    if found is not None and (found.space, found.dim, found.embedder_id) == wanted:
        return found
    if found is not None:
        drop_space(s, name)
    sid = s.execute(insert(VECTOR_SPACES).values(name=name, space=space, dim=int(dim), embedder_id=int(embedder_id))
                    .returning(VECTOR_SPACES.c.id)).scalar_one()  # its index made by the row's trigger
    return SpaceRow(sid, name, *wanted)


def drop_space(s: Session, name: str) -> None:
    """Delete the space called `name`, its vectors and its index (nothing when there is none)."""
    found = get_space(s, name)
    if found is not None:  # its vectors go with it (ON DELETE CASCADE), its index by the row's trigger
        s.execute(delete(VECTOR_SPACES).where(VECTOR_SPACES.c.id == found.id))


def write_vectors(s: Session, space: SpaceRow, ids: Sequence[int], vectors: Any) -> None:
    """Store unit copies of `vectors` (n, dim) under embedding `ids` in `space`; a vector already
    there (another process filled the same gap) is kept."""
    x = unit_rows(vectors, space.dim)
    if len(ids) != len(x):
        raise ValueError(f"{len(ids)} ids for {len(x)} vectors")
    rows = [{"space_id": space.id, "embedding_id": int(i), "v": v} for i, v in zip(ids, x)]
    for part in chunks(rows):
        s.execute(pg_insert(SPACE_VECTORS).on_conflict_do_nothing(), list(part))


def may_write_vectors(s: Session) -> bool:
    """Whether this database role may store vectors (an examiner may not): asked of the server up
    front, so that a search by a role that may not never sends a refused write (each one a
    ``permission denied`` in the server's log, which supervisors watch)."""
    return bool(s.scalar(select(func.has_table_privilege(SPACE_VECTORS.name, "INSERT"))))


def add_plain(s: Session, embedder_id: int, dim: int, ids: Sequence[int], vectors: Any) -> None:
    """The enrollment's vectors into the plain space (made with the first ones), in its transaction."""
    if len(ids):
        write_vectors(s, ensure_space(s, PLAIN, None, dim, embedder_id), ids, vectors)


def missing_ids(s: Session, space: SpaceRow) -> np.ndarray:
    """The gallery's embedding ids (of the space's embedder) that the space lacks, ascending."""
    e = FaceEmbedding.__table__
    held = select(SPACE_VECTORS.c.embedding_id).where(SPACE_VECTORS.c.space_id == space.id,
                                                      SPACE_VECTORS.c.embedding_id == e.c.id)
    rows = s.scalars(select(e.c.id).where(e.c.embedder_id == space.embedder_id, ~held.exists()).order_by(e.c.id))
    return np.fromiter(rows, dtype=np.int64)


def count(s: Session, space: SpaceRow) -> int:
    return int(s.scalar(select(func.count()).select_from(SPACE_VECTORS).where(SPACE_VECTORS.c.space_id == space.id)))


def held_ids(s: Session, space: SpaceRow, ids: Optional[Sequence[int]] = None) -> list[int]:
    """The embedding ids the space holds (of `ids`, when given), ascending."""
    stmt = select(SPACE_VECTORS.c.embedding_id).where(SPACE_VECTORS.c.space_id == space.id)
    if ids is None:
        return list(s.scalars(stmt.order_by(SPACE_VECTORS.c.embedding_id)))
    return sorted(i for part in chunks([int(i) for i in ids])
                  for i in s.scalars(stmt.where(SPACE_VECTORS.c.embedding_id.in_(part))))


def read_vectors(s: Session, space: SpaceRow, ids: Sequence[int]) -> dict[int, np.ndarray]:
    """The stored vectors of those of `ids` the space holds."""
    stmt = select(SPACE_VECTORS.c.embedding_id, SPACE_VECTORS.c.v).where(SPACE_VECTORS.c.space_id == space.id)
    return {int(eid): np.asarray(v, np.float32) for part in chunks([int(i) for i in ids])
            for eid, v in s.execute(stmt.where(SPACE_VECTORS.c.embedding_id.in_(part)))}


def index_exists(s: Session, space: SpaceRow) -> bool:
    """True when the space's HNSW index is in the catalogue (pg_indexes)."""
    return bool(s.scalar(text("SELECT count(*) FROM pg_indexes WHERE indexname = :n"), {"n": space.index_name}))


# --------------------------------------------------------------------------------------------
# Search (the surface forensics.ranking uses)
# --------------------------------------------------------------------------------------------


class PgVectorIndex:
    """One space, searched in the database: ``search``, ``ids``, ``contains``, ``reconstruct``
    as :class:`gallery.index.VectorIndex` has them. ``ntotal``: its vectors when it was opened.

    ``pending``: (ids, vectors) of faces enrolled since the space was last brought up to date,
    computed by a process whose role may not store them (an examiner's query during an
    enrollment); searched with the stored ones, exactly, so that the results are the same."""

    def __init__(self, database: Database, space: SpaceRow, embedder: Any, kind: str = HNSW,
                 pending: Optional[tuple[np.ndarray, np.ndarray]] = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"search kind must be one of {KINDS}, not {kind!r}")
        self.database, self.row, self.kind = database, space, kind
        self.embedder = EmbedderKey.coerce(embedder)
        self.space = space.space
        ids, vecs = pending if pending is not None else (np.empty(0, np.int64), np.empty((0, space.dim)))
        self.pending_ids, self.pending = np.asarray(ids, np.int64), unit_rows(vecs, space.dim)
        with read_transaction(database) as s:
            self.stored = count(s, space)

    @property
    def ntotal(self) -> int:
        return self.stored + len(self.pending_ids)

    @property
    def dim(self) -> int:
        return self.row.dim

    def __len__(self) -> int:
        return self.ntotal

    def search(self, queries: Any, k: int, *, embedder_key: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """The k most similar vectors of each query, best first: (scores (m, k'), ids (m, k'))."""
        check_embedder(self.embedder, embedder_key)
        q = unit_rows(queries, self.dim)
        kk = int(min(int(k), self.ntotal))
        scores = np.full((len(q), max(kk, 0)), -np.inf, np.float32)
        ids = np.full((len(q), max(kk, 0)), -1, np.int64)
        if kk <= 0 or not len(q):
            return scores, ids
        sql = self._search_sql(min(kk, self.stored))
        with read_transaction(self.database) as s:
            self._plan(s, kk)
            for i, vec in enumerate(q):
                hits = s.execute(sql, {"q": literal(vec)}).all() if self.stored else []
                row_ids = np.asarray([h[0] for h in hits] + self.pending_ids.tolist(), np.int64)
                row_scores = np.asarray([h[1] for h in hits] + (self.pending @ vec).tolist(), np.float32)
                best = np.argsort(-row_scores, kind="stable")[:kk]
                ids[i, :len(best)], scores[i, :len(best)] = row_ids[best], row_scores[best]
        return scores, ids

    def _search_sql(self, k: int) -> Any:
        """The k nearest of :q by cosine distance, as the space's partial index is defined (the
        space id inlined, so the planner matches the index's WHERE for any plan)."""
        d = self.dim
        return text(f"SELECT embedding_id, 1 - ((v::vector({d})) <=> CAST(:q AS vector({d}))) "
                    f"FROM space_vectors WHERE space_id = {int(self.row.id)} "
                    f"ORDER BY (v::vector({d})) <=> CAST(:q AS vector({d})) LIMIT {int(k)}")

    def explain(self, k: int) -> str:
        """PostgreSQL's plan of a search for k (EXPLAIN): names the HNSW index when it is used."""
        with read_transaction(self.database) as s:
            self._plan(s, k)
            q = literal(np.full(self.dim, 1 / np.sqrt(self.dim), np.float32))
            sql = text("EXPLAIN " + str(self._search_sql(k)))
            return "\n".join(r[0] for r in s.execute(sql, {"q": q}))

    def _plan(self, s: Session, k: int) -> None:
        """The index with ef_search >= k, or an exact scan: kind flat, k beyond ef_search's limit,
        or k covering the whole space (a widened search then misses no one)."""
        if self.kind == HNSW and k <= MAX_EF_SEARCH and k < self.stored:
            s.execute(text(f"SET LOCAL hnsw.ef_search = {max(MIN_EF_SEARCH, min(MAX_EF_SEARCH, 2 * k))}"))
        else:
            s.execute(text("SET LOCAL enable_indexscan = off"))

    def ids(self) -> np.ndarray:
        """Every embedding id the space holds (pending ones included), ascending."""
        with read_transaction(self.database) as s:
            return np.union1d(np.asarray(held_ids(s, self.row), dtype=np.int64), self.pending_ids)

    def contains(self, ids: Any) -> np.ndarray:
        """For each of `ids`, whether the space holds it."""
        want = np.asarray(ids, dtype=np.int64).reshape(-1)
        with read_transaction(self.database) as s:
            held = held_ids(s, self.row, want.tolist())
        return np.isin(want, np.asarray(held, dtype=np.int64)) | np.isin(want, self.pending_ids)

    def reconstruct(self, ids: Any) -> np.ndarray:
        """The vectors of `ids` (n, dim); KeyError if one is absent."""
        want = [int(i) for i in np.asarray(ids, dtype=np.int64).reshape(-1)]
        with read_transaction(self.database) as s:
            found = read_vectors(s, self.row, want)
        found.update(zip(self.pending_ids.tolist(), self.pending))
        missing = [i for i in want if i not in found]
        if missing:
            raise KeyError(f"ids not in the {self.row.name} space: {missing[:10]}")
        return np.stack([found[i] for i in want]) if want else np.empty((0, self.dim), np.float32)

    def __repr__(self) -> str:
        return f"<PgVectorIndex {self.row.name} {self.kind} {self.embedder} n={self.ntotal}>"


__all__ = ["HNSW", "KINDS", "METADATA", "PLAIN", "SPACE_VECTORS", "VECTOR_SPACES", "PgVectorIndex", "SpaceRow",
           "add_plain", "count", "drop_space", "ensure_space", "get_space", "held_ids", "index_exists", "is_postgres",
           "literal", "missing_ids", "read_vectors", "schema", "write_vectors"]
