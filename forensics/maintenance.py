"""Gallery maintenance: removing subjects, checking and rebuilding the derived FAISS index.

Every action appends an audit event.
"""

from __future__ import annotations

import hashlib

from gallery import audit
from gallery.db import Gallery
from gallery.errors import IndexCorruptError, SubjectNotFoundError
from gallery.index import FLAT, IndexProblem, VectorIndex
from gallery.records import RemovedSubject

from forensics.errors import ForensicsError
from forensics.indexes import GalleryIndexes


def remove_subject(gallery: Gallery, external_id: str, operator: str) -> RemovedSubject:
    """Delete a subject's images, faces and vectors from the DB, then from the index.

    The audit event keeps only the image hashes, so a purged person can no longer be found.
    """
    repo = gallery.repository()
    try:
        removed = repo.remove_subject(external_id)
    except (SubjectNotFoundError, KeyError):
        raise ForensicsError(f"no subject {external_id!r} in the gallery") from None
    GalleryIndexes(gallery).purge(removed.embedding_ids)
    # the audit log keeps only hashes of a purged person: the id's SHA-256 and the image hashes
    audit.append_event(gallery, actor=operator, action="remove-subject",
                       target="subject-sha256:" + hashlib.sha256(external_id.encode()).hexdigest(),
                       details={"images": len(removed.image_sha256s), "vectors": len(removed.embedding_ids)},
                       input_hashes=list(removed.image_sha256s))
    return removed


def check_gallery(gallery: Gallery, operator: str = "system") -> list[IndexProblem]:
    """Problems between the saved indexes and the DB (empty: they agree), each message naming its index."""
    found = GalleryIndexes(gallery).check()
    problems = [IndexProblem(p.kind, f"{name} index: {p.message}" if name != "plain" else p.message, p.ids)
                for name, probs in found.items() for p in probs]
    audit.append_event(gallery, actor=operator, action="gallery-check", target=str(gallery.path),
                       details={"problems": [p.kind for p in problems]}, outcome="ok" if not problems else "problems")
    return problems


def rebuild_index(gallery: Gallery, kind: str = FLAT, nprobe: int | None = None, operator: str = "system",
                  whitening=None) -> VectorIndex:
    """Rebuild the derived indexes as `kind` (kept in the database for later rebuilds); audited."""
    index = GalleryIndexes(gallery).rebuild(kind, nprobe, whitening)
    audit.append_event(gallery, actor=operator, action="rebuild-index", target=str(gallery.path),
                       details={"kind": kind, "nprobe": nprobe, "vectors": index.ntotal})
    return index
