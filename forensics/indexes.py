"""The vector-store interface: what ranking searches, and the one owner of a gallery's derived indexes.

Two implementations, chosen by the gallery's database (`forensics.stores.open_indexes`), never
by a flag: `forensics.faiss_indexes.FaissIndexes`, FAISS files beside a SQLite gallery, and
`forensics.pg_indexes.PgIndexes`, pgvector in a PostgreSQL gallery (searched in the database).

Each serves the same named indexes (search spaces), all keyed by embedding id:

| name            | vectors                                              |
|-----------------|------------------------------------------------------|
| `plain`         | the stored descriptors (photo search)                |
| `whitened`      | the same in the sketch search space (sketch queries) |
| `roundtrip`     | round-trip vectors, sketch search space              |
| `roundtrip-raw` | round-trip vectors, raw descriptor space             |

The database is the source of truth. The search kind of the plain and whitened indexes is kept
in the database (`gallery_meta`, key `index_kind`), set by `forensics gallery rebuild-index
--kind`, so every later rebuild keeps it. Round-trip vectors cost ~50 ms a face to compute
(docs/benchmarks.md): they are computed only for faces that lack them (by `forensics enroll` where
the gallery's setting says so, `forensics.settings`; else by `gallery roundtrip` or the first
round-trip query), and always searched exactly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import numpy as np

from gallery.db import Gallery
from gallery.index import IndexProblem
from gallery.records import EmbedderKey

from forensics.errors import ForensicsError, check_at_least
from forensics.probes import INDEX_PLAIN, INDEX_ROUNDTRIP, INDEX_ROUNDTRIP_RAW, INDEX_WHITENED

NAMES = (INDEX_PLAIN, INDEX_WHITENED, INDEX_ROUNDTRIP, INDEX_ROUNDTRIP_RAW)
KIND_KEY = "index_kind"
ROUNDTRIP_CHUNK = 256

Progress = Callable[[int, int], None]


class SearchIndex(Protocol):
    """One search space of a gallery, as `forensics.ranking.rank` uses it: unit vectors keyed by
    embedding id, cosine similarity. `kind`: `flat` (exact) or an approximate kind; `space`: what
    the vectors are when not the embedder's own (a whitening's or round-trip's id)."""

    kind: str
    space: str | None
    embedder: EmbedderKey

    @property
    def ntotal(self) -> int: ...

    def search(self, queries: Any, k: int, *, embedder_key: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores (m, k'), ids (m, k')), best first; id -1 / score -inf where fewer were found."""

    def ids(self) -> np.ndarray:
        """Every embedding id held, ascending."""

    def contains(self, ids: Any) -> np.ndarray:
        """For each of `ids`, whether it is held."""

    def reconstruct(self, ids: Any) -> np.ndarray:
        """The stored unit vectors of `ids` (n, dim); KeyError if one is absent."""


class GalleryIndexes(ABC):
    """The derived indexes of one gallery: open, round-trip vectors, rebuild, purge, check."""

    #: the search kinds this store offers, and the one used until `rebuild` keeps another
    KINDS: tuple[str, ...] = ()
    DEFAULT_KIND = ""

    def __init__(self, gallery: Gallery):
        self.gallery = gallery
        self.repo = gallery.repository()

    def kind(self) -> tuple[str, int | None]:
        """(kind, nprobe) of the plain and whitened indexes, as kept in the database."""
        meta = self.gallery.get_meta(KIND_KEY) or {}
        return meta.get("kind", self.DEFAULT_KIND), meta.get("nprobe")

    def embedder(self):
        """The gallery's embedder (a clear error when the gallery is empty)."""
        emb = self.repo.gallery_embedder()
        if emb is None:
            where = self.gallery.path or "(in memory)"
            raise ForensicsError(f"the gallery {where} is empty: enroll photos first (`forensics enroll`)")
        return emb

    def open(self, names: Iterable[str], *, embedder=None, inverter=None, whitening=None,
             progress: Progress | None = None) -> dict[str, SearchIndex]:
        """The indexes called `names` (round-trip ones need the embedder and inverter)."""
        out = {}
        for name in sorted(set(names)):
            if name == INDEX_PLAIN:
                out[name] = self.plain()
            elif name == INDEX_WHITENED:
                out[name] = self.whitened(whitening)
            else:
                out[name] = self.roundtrip(embedder, inverter, whitening if name == INDEX_ROUNDTRIP else None,
                                           progress)
        return out

    def rebuild(self, kind: str | None = None, nprobe: int | None = None, whitening=None) -> SearchIndex:
        """Rebuild the plain index (and the whitened one, with a `whitening`) as `kind`, and keep
        that kind in the database for every later rebuild."""
        kind = self.DEFAULT_KIND if kind is None else kind
        if kind not in self.KINDS:
            raise ForensicsError(f"--kind must be one of {', '.join(self.KINDS)}, not {kind!r}")
        if nprobe is not None:
            check_at_least("--nprobe", nprobe, 1)
        self.embedder()
        return self._rebuild(kind, nprobe, whitening)

    def roundtrip_embedder(self, embedder, inverter):
        """The gallery's embedder row for round-trip vectors made with `embedder` and `inverter`
        (refuses a gallery enrolled with another embedder, and an empty one)."""
        if embedder is None or inverter is None:
            raise ForensicsError("round-trip vectors need the embedder and the sketch-inversion network")
        info = embedder.info
        emb = self.repo.ensure_embedder_compatible(info.name, info.version, info.dim)
        if emb is None:
            raise ForensicsError("the gallery is empty: enroll photos first")
        return emb

    @abstractmethod
    def plain(self) -> SearchIndex:
        """The stored descriptors."""

    @abstractmethod
    def whitened(self, whitening) -> SearchIndex:
        """The stored descriptors in `whitening`'s sketch search space."""

    @abstractmethod
    def roundtrip(self, embedder, inverter, whitening, progress: Progress | None = None,
                  chunk: int = ROUNDTRIP_CHUNK) -> SearchIndex:
        """The round-trip vectors (sketch search space with a `whitening`, else raw), brought up
        to date computing only the faces that lack them."""

    @abstractmethod
    def refresh(self, whitening=None) -> None:
        """After an enrollment: the indexes kept current by every change brought up to date."""

    @abstractmethod
    def _rebuild(self, kind: str, nprobe: int | None, whitening) -> SearchIndex:
        """Drop and remake the plain and whitened indexes as `kind`, keeping `kind` in the
        database; the new plain index."""

    @abstractmethod
    def purge(self, embedding_ids: Iterable[int]) -> None:
        """After faces were removed from the database: nothing of them stays in any index."""

    @abstractmethod
    def check(self) -> dict[str, list[IndexProblem]]:
        """Problems between each index and the database, by index name."""
