"""gallery/vectors.py: embedders, stored vectors, chips, owners, fingerprint and counts."""

from __future__ import annotations

import numpy as np
import pytest

from gallery import EmbedderInfo, EmbedderMismatchError, EnrollmentError, GalleryError
from gallery.vectors import normalize_vector, vector_from_bytes, vector_to_bytes


def test_embedder_mixing_refused(repo, emb, enroll, face, sha, dim):
    assert repo.gallery_embedder() is None
    assert repo.ensure_embedder_compatible("anything", "9", 3) is None  # empty gallery
    enroll(repo, emb, "E-1")
    assert repo.gallery_embedder() == emb
    assert repo.ensure_embedder_compatible(emb.name, emb.version, dim) == emb

    other = repo.get_or_create_embedder("arcface", "2.0", dim)
    with pytest.raises(EmbedderMismatchError) as ei:
        repo.add_enrollment("E-2", sha256=sha("e2"), faces=[face(np.ones(dim), other)])
    assert "facenet-vggface2@1.0" in str(ei.value) and "arcface@2.0" in str(ei.value)
    assert repo.get_subject("E-2") is None
    with pytest.raises(EmbedderMismatchError, match="never mixed"):
        repo.ensure_embedder_compatible("arcface", "2.0", dim)
    with pytest.raises(EmbedderMismatchError):
        repo.ensure_embedder_compatible(emb.name, "1.1", dim)
    with pytest.raises(EmbedderMismatchError):
        repo.ensure_embedder_compatible(emb.name, emb.version, dim, weights_sha256="b" * 64)
    # same name/version registered with another dim or other weights
    with pytest.raises(EmbedderMismatchError):
        repo.get_or_create_embedder(emb.name, emb.version, dim * 2)
    with pytest.raises(EmbedderMismatchError):
        repo.get_or_create_embedder(emb.name, emb.version, dim, "c" * 64)
    assert repo.get_or_create_embedder(emb.name, emb.version, dim, "a" * 64) == emb


def test_embedder_arguments_checked_and_weights_recorded_later(repo, dim):
    with pytest.raises(ValueError):
        repo.get_or_create_embedder("m", "1", 0)
    with pytest.raises(ValueError):
        repo.get_or_create_embedder("m", "1", dim, "not-a-hash")
    e = repo.get_or_create_embedder("m", "1", dim)
    assert e.weights_sha256 is None
    assert repo.get_or_create_embedder("m", "1", dim, "d" * 64) == EmbedderInfo("m", "1", dim, "d" * 64, id=e.id)


def test_vectors_batches_and_owners(repo, emb, enroll, sha, dim):
    enroll(repo, emb, "B-100", n_images=2, n_faces=2, name="Jane Roe", sex="F", birth_year=1980)
    ids, vecs = repo.iter_embeddings(emb)
    assert ids.dtype == np.int64 and vecs.dtype == np.float32 and vecs.shape == (4, dim)
    owners = repo.embedding_owners(ids.tolist() + [123456, -1])
    assert set(owners) == set(ids.tolist())
    o = owners[int(ids[0])]
    assert (o.external_id, o.name, o.sex, o.birth_year) == ("B-100", "Jane Roe", "F", 1980)
    assert o.image_sha256 == sha("B-100/0") and o.embedding_id == ids[0]
    # batches reassemble to the same arrays
    parts = list(repo.iter_embedding_batches(emb, batch_size=3))
    assert [len(p[0]) for p in parts] == [3, 1]
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), vecs)
    got = repo.get_vectors([int(ids[1]), 999])
    assert list(got) == [int(ids[1])]
    np.testing.assert_array_equal(got[int(ids[1])], vecs[1])


def test_empty_gallery_has_no_vectors(repo, emb):
    ids, vecs = repo.iter_embeddings()
    assert ids.shape == (0,) and vecs.shape == (0, 0)
    assert list(repo.iter_embedding_batches()) == []
    with pytest.raises(GalleryError, match="unknown embedder"):
        repo.iter_embeddings(emb.id + 100)


def test_chips_by_embedding_and_by_image(repo, emb, enroll, sha):
    res = enroll(repo, emb, "C-1", n_images=2, n_faces=2)
    chips = repo.face_chips([*res[0].embedding_ids, 999])
    assert chips == {res[0].embedding_ids[0]: b"\x89PNG fake chip 0", res[0].embedding_ids[1]: b"\x89PNG fake chip 1"}
    by_image = repo.image_chips([sha("C-1/0").upper(), sha("C-1/1"), sha("nope"), ""])
    assert by_image == {sha("C-1/0"): b"\x89PNG fake chip 0", sha("C-1/1"): b"\x89PNG fake chip 0"}  # first face


def test_gallery_fingerprint_tracks_state(repo, emb, enroll):
    empty = repo.gallery_fingerprint()
    enroll(repo, emb, "F-1")
    one = repo.gallery_fingerprint()
    assert one != empty and one == repo.gallery_fingerprint() and len(one) == 64
    enroll(repo, emb, "F-2")
    two = repo.gallery_fingerprint()
    assert two != one
    repo.remove_subject("F-2")
    assert repo.gallery_fingerprint() == one


def test_counts(repo, emb, enroll):
    enroll(repo, emb, "N-1", n_images=2, n_faces=3)
    enroll(repo, emb, "N-2")
    other = repo.get_or_create_embedder("arcface", "2.0", emb.dim)
    assert (repo.count_subjects(), repo.count_images(), repo.count_faces()) == (2, 3, 7)
    assert repo.count_embeddings() == repo.count_embeddings(emb) == 7
    assert repo.count_embeddings(other.id) == 0


def test_vectors_are_normalised_and_stored_as_float32(dim):
    v = normalize_vector(np.arange(1, dim + 1), dim)
    assert v.dtype == np.dtype("<f4") and abs(float(np.linalg.norm(v)) - 1) < 1e-6
    np.testing.assert_array_equal(vector_from_bytes(vector_to_bytes(v)), v)
    for bad, why in ((np.ones(dim + 1), "dim"), (np.zeros(dim), "zeros"), (np.full(dim, np.inf), "infinite")):
        with pytest.raises(EnrollmentError, match=why):
            normalize_vector(bad, dim)
