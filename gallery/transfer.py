"""Copying a whole gallery into another, empty one: SQLite to PostgreSQL, back, or alike to alike.

Every table of the schema (:data:`COPIED_TABLES`: subjects, images, faces with their chips,
embeddings, embedders, stored queries with their inputs and candidates, reviews, the audit log,
``gallery_meta``) is copied row by row with its ids, in foreign-key order, from one consistent
read of the source. Ids, timestamps, floats and JSON come out as they went in, so the digests
sealed in the audit log (:mod:`gallery.seal`) and the hash chain itself verify on the destination
exactly as on the source. On a PostgreSQL destination the id sequences are moved past the copied
ids. The search indexes are not copied (the FAISS files beside SQLite, the pgvector spaces of
PostgreSQL): they are derived from the descriptors, and the destination's store makes them
(``forensics.stores``; the application refreshes them right after the copy). On a PostgreSQL
destination the plain vector space, which enrollment keeps in step with the descriptors, is
written in the copy's own transaction, so that a copy interrupted after it commits is not behind.

The whole copy is one transaction of the destination: the row counts of every table are compared
with the source's and the destination is verified (:func:`gallery.verify.verify_gallery`) before
it commits, so a failed or interrupted copy leaves the destination as empty as it was, never a
half-copied gallery that looks complete. Then one audit event (``copy``, naming the source with
any password masked) is appended to the destination's chain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import Table, func, select, text
from sqlalchemy.orm import Session

from . import audit
from .db import Gallery
from .errors import GalleryError
from .models import Base, GalleryMeta
from .pgvector import add_plain
from .transaction import read_transaction, write_transaction
from .vectors import VectorStore
from .verify import verify_gallery

#: The tables copied, parents before children.
COPIED_TABLES: tuple[Table, ...] = tuple(Base.metadata.sorted_tables)
#: The tables that must be empty in a destination (``gallery_meta`` holds its creation facts).
CONTENT_TABLES = tuple(t for t in COPIED_TABLES if t.name != GalleryMeta.__tablename__)
#: Rows read and written at a time.
BATCH = 500

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class TableCount:
    """Rows of one table in the source and, after the copy, in the destination."""

    table: str
    source: int
    destination: int


@dataclass(frozen=True)
class CopyResult:
    """What a copy did: the rows of each table, and the destination's audit head after it."""

    counts: tuple[TableCount, ...]
    audit_events: int
    head_hash: str


class CopyError(GalleryError):
    """The copy was refused or did not give the source's rows (nothing was committed)."""


def content_counts(s: Session) -> dict[str, int]:
    """Rows of each table the copy carries (``gallery_meta`` too), by table name."""
    return {t.name: int(s.scalar(select(func.count()).select_from(t)) or 0) for t in COPIED_TABLES}


def _check_empty(dst: Session, label: str) -> None:
    """CopyError unless the destination holds no row but ``gallery_meta``'s: not even an audit event
    (the copy carries the source's log from its first event, and no event can be deleted)."""
    full = {name: n for name, n in content_counts(dst).items() if n and name != GalleryMeta.__tablename__}
    if full:
        what = ", ".join(f"{n:,} {name}" for name, n in sorted(full.items()))
        raise CopyError(f"the destination {label} is not empty ({what}): a copy carries the source's audit log "
                        "from its first event, so it goes into a new gallery file or a new, empty PostgreSQL "
                        "database (the copy creates the schema; not one made with `gallery init`, whose log has begun)")


def _copy_table(src: Session, dst: Session, table: Table, done: int, total: int,
                progress: Optional[Progress]) -> int:
    """Every row of `table`, in primary-key order, batch by batch; returns the rows done so far."""
    stmt = select(table).order_by(*table.primary_key.columns)
    for part in src.execute(stmt, execution_options={"yield_per": BATCH}).mappings().partitions():
        dst.execute(table.insert(), [dict(r) for r in part])
        done += len(part)
        if progress is not None:
            progress(done, total)
    return done


def _replace_meta(src: Session, dst: Session) -> None:
    """The destination's ``gallery_meta`` becomes the source's (its audit head included)."""
    table = GalleryMeta.__table__
    dst.execute(table.delete())
    rows = [dict(r) for r in src.execute(select(table)).mappings()]
    if rows:
        dst.execute(table.insert(), rows)


def _advance_sequences(dst: Session) -> None:
    """On PostgreSQL, each id sequence past the largest copied id (rows were given their ids)."""
    for table in CONTENT_TABLES:
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or not pk[0].autoincrement or pk[0].name != "id":
            continue
        seq = dst.scalar(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table.name})
        if seq is not None:
            dst.execute(text(f"SELECT setval(:s, (SELECT coalesce(max(id), 0) + 1 FROM {table.name}), false)"),
                        {"s": seq})


def _fill_plain(src: Session, dst: Session) -> None:
    """The destination's plain vector space (PostgreSQL) from the source's descriptors, whose ids
    the copy kept."""
    vectors = VectorStore(src)
    emb = vectors.gallery_embedder()
    if emb is None:
        return
    for ids, vecs in vectors.iter_embedding_batches(emb.id):
        add_plain(dst, emb.id, emb.dim, ids.tolist(), vecs)


def _compare_counts(source: dict[str, int], dst: Session) -> tuple[TableCount, ...]:
    """Each table's rows in the source and the destination; CopyError naming those that differ."""
    have = content_counts(dst)
    counts = tuple(TableCount(name, n, have.get(name, 0)) for name, n in source.items())
    wrong = [c for c in counts if c.source != c.destination]
    if wrong:
        raise CopyError("the copy does not hold the source's rows (" + ", ".join(
            f"{c.table}: {c.source:,} in the source, {c.destination:,} copied" for c in wrong) + "); nothing was kept")
    return counts


def _check_verifies(dst: Session) -> None:
    verdict = verify_gallery(dst)
    if not verdict.ok:
        raise CopyError("the copied gallery does not verify (" + "; ".join(verdict.problems[:3]) + "); nothing was "
                        "kept: run `forensics audit verify` on the source")


def copy_gallery(source: Gallery, dest: Gallery, *, actor: str, source_label: str, dest_label: str,
                 progress: Optional[Progress] = None) -> CopyResult:
    """Copy every row of `source` into the empty gallery `dest` (see the module), then record the
    copy in the destination's audit log as `actor`. `source_label` names the source in that event
    and must not hold a password. CopyError when `dest` is not empty or the copy is not whole."""
    with read_transaction(source) as src:  # one snapshot of the source for the whole copy
        counts = content_counts(src)
        total = sum(counts.values()) - counts[GalleryMeta.__tablename__]
        with write_transaction(dest) as dst:  # the write lock held from the emptiness check to the commit
            _check_empty(dst, dest_label)
            done = 0
            for table in CONTENT_TABLES:
                done = _copy_table(src, dst, table, done, total, progress)
            _replace_meta(src, dst)
            if dest.location.is_postgres:
                _advance_sequences(dst)
                _fill_plain(src, dst)
            result = _compare_counts(counts, dst)
            _check_verifies(dst)
            event = audit.append_event(dst, actor, "copy", source_label, {
                "from": source_label, "to": dest_label, "rows": {c.table: c.source for c in result}})
    return CopyResult(result, event.id, event.hash)


__all__ = ["COPIED_TABLES", "CopyError", "CopyResult", "TableCount", "content_counts", "copy_gallery"]
