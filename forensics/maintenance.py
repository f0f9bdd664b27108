"""Gallery maintenance: removing subjects, checking and rebuilding the derived FAISS index.

Every action appends an audit event.
"""

from __future__ import annotations

from gallery import audit
from gallery.db import Gallery
from gallery.errors import SubjectNotFoundError
from gallery.index import IndexProblem
from gallery.records import RemovedSubject
from gallery.sealed import remove_subject_sealed

from forensics.errors import ForensicsError
from forensics.indexes import SearchIndex
from forensics.stores import open_indexes


def remove_subject(gallery: Gallery, external_id: str, operator: str) -> RemovedSubject:
    """Delete a subject's images, faces and vectors from the DB, then from the index.

    The audit event keeps only the image hashes, so a purged person can no longer be found.
    """
    try:
        removed = remove_subject_sealed(gallery, external_id, operator)
    except SubjectNotFoundError:
        raise ForensicsError(f"no subject {external_id!r} in the gallery") from None
    open_indexes(gallery).purge(removed.embedding_ids)
    return removed


def check_gallery(gallery: Gallery, operator: str = "system") -> list[IndexProblem]:
    """Problems found (empty: none): the database's own checks (SQLite: integrity and foreign
    keys; PostgreSQL: constraints left unvalidated), then, if it is sound, between the indexes and
    the database, each message naming its index. Audited when the database is sound (nothing is
    written to a damaged one)."""
    engine = "PostgreSQL constraint check" if gallery.location.is_postgres else "SQLite integrity check"
    integrity = [IndexProblem("integrity", f"{engine}: {m}", ()) for m in gallery.integrity_check()]
    if integrity:
        return integrity
    found = open_indexes(gallery).check()
    problems = [IndexProblem(p.kind, f"{name} index: {p.message}" if name != "plain" else p.message, p.ids)
                for name, probs in found.items() for p in probs]
    audit.append_event(gallery, actor=operator, action="gallery-check", target=gallery.location.display(),
                       details={"integrity": "ok", "problems": [p.kind for p in problems]},
                       outcome="ok" if not problems else "problems")
    return problems


def rebuild_index(gallery: Gallery, kind: str | None = None, nprobe: int | None = None, operator: str = "system",
                  whitening=None) -> SearchIndex:
    """Rebuild the derived indexes as `kind` (default: the store's; kept in the database for later
    rebuilds); audited."""
    index = open_indexes(gallery).rebuild(kind, nprobe, whitening)
    audit.append_event(gallery, actor=operator, action="rebuild-index", target=gallery.location.display(),
                       details={"kind": kind, "nprobe": nprobe, "vectors": index.ntotal})
    return index
