"""Gallery maintenance: removing subjects, checking and rebuilding the derived FAISS index.

Every action appends an audit event.
"""

from __future__ import annotations

import hashlib

from gallery import audit
from gallery.db import Gallery
from gallery.errors import IndexCorruptError, SubjectNotFoundError
from gallery.index import (FLAT, IndexProblem, VectorIndex, check_consistency, default_index_path, load_or_build,
                           sidecar_path)
from gallery.records import RemovedSubject

from forensics.errors import ForensicsError
from forensics.roundtrip import drop_from_roundtrip_index
from forensics.service import whitened_index_path


def remove_subject(gallery: Gallery, external_id: str, operator: str) -> RemovedSubject:
    """Delete a subject's images, faces and vectors from the DB, then from the index.

    The audit event keeps only the image hashes, so a purged person can no longer be found.
    """
    repo = gallery.repository()
    try:
        removed = repo.remove_subject(external_id)
    except (SubjectNotFoundError, KeyError):
        raise ForensicsError(f"no subject {external_id!r} in the gallery") from None
    path = default_index_path(gallery.path)
    if repo.gallery_embedder() is not None:
        load_or_build(repo, path)  # stale (fingerprint changed): rebuilt without the subject
    else:
        for p in (path, sidecar_path(path)):
            p.unlink(missing_ok=True)
    # the sketch search space's derived index still holds the subject's vectors: delete it (the next
    # sketch query rebuilds it from the DB)
    white = whitened_index_path(path)
    for p in (white, sidecar_path(white)):
        p.unlink(missing_ok=True)
    drop_from_roundtrip_index(gallery.path, removed.embedding_ids)
    # the audit log keeps only hashes of a purged person: the id's SHA-256 and the image hashes
    audit.append_event(gallery, actor=operator, action="remove-subject",
                       target="subject-sha256:" + hashlib.sha256(external_id.encode()).hexdigest(),
                       details={"images": len(removed.image_sha256s), "vectors": len(removed.embedding_ids)},
                       input_hashes=list(removed.image_sha256s))
    return removed


def check_gallery(gallery: Gallery, operator: str = "system") -> list[IndexProblem]:
    """Problems between the saved index and the DB (empty: they agree)."""
    repo = gallery.repository()
    path = default_index_path(gallery.path)
    emb = repo.gallery_embedder()
    try:
        index = VectorIndex.load(path)
        problems = check_consistency(repo, index)
        fp = repo.gallery_fingerprint(emb) if emb is not None else None
        if not problems and emb is not None and index.gallery_fingerprint != fp:
            problems.append(IndexProblem("stale", "the index was built from another state of the gallery", ()))
    except IndexCorruptError as e:
        if emb is None and not path.exists():
            problems = []
        else:
            problems = [IndexProblem("unreadable", str(e), ())]
    audit.append_event(gallery, actor=operator, action="gallery-check", target=str(gallery.path),
                       details={"problems": [p.kind for p in problems]}, outcome="ok" if not problems else "problems")
    return problems


def rebuild_index(gallery: Gallery, kind: str = FLAT, nprobe: int | None = None, operator: str = "system") -> VectorIndex:
    if kind not in ("flat", "ivf"):
        raise ForensicsError(f"--kind must be flat or ivf, not {kind!r}")
    repo = gallery.repository()
    index = VectorIndex.from_repository(repo, kind, **({"nprobe": nprobe} if nprobe else {}))
    index.save(default_index_path(gallery.path))
    audit.append_event(gallery, actor=operator, action="rebuild-index", target=str(gallery.path),
                       details={"kind": kind, "vectors": index.ntotal})
    return index
