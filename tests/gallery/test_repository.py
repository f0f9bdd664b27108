"""gallery/repository.py: the facade over the per-concern storage parts."""

from __future__ import annotations

from gallery import GalleryRepository
from gallery.enrollment import EnrollmentStore
from gallery.queries import QueryStore
from gallery.subjects import SubjectStore
from gallery.vectors import VectorStore


def test_facade_is_the_union_of_the_parts(gal):
    repo = gal.repository()
    assert isinstance(repo, GalleryRepository)
    for part in (SubjectStore, EnrollmentStore, VectorStore, QueryStore):
        assert isinstance(repo, part)
        public = [n for n in vars(part) if not n.startswith("_")]
        assert public and all(getattr(type(repo), n) is getattr(part, n) for n in public)


def test_snapshot_reads_one_state_while_others_write(gal, repo, emb, enroll):
    enroll(repo, emb, "S-1")
    with repo.snapshot() as snap:
        before = (snap.count_images(), snap.gallery_fingerprint())
        enroll(repo, emb, "S-2")  # committed by another connection meanwhile
        assert (snap.count_images(), snap.gallery_fingerprint()) == before
        assert len(snap.iter_embeddings()[0]) == 1
    assert repo.count_images() == 2
