"""The sketch search space (partial PCA whitening): fit, file, derived index, probes, calibration."""

from __future__ import annotations

import json

import numpy as np
import pytest

from forensics.calibration import fit_calibration, load_calibration, save_calibrations
from forensics.records import EmbedderInfo
from forensics.whitening import fit_whitening, load_whitening, save_whitening
from gallery.db import open_gallery
from gallery.index import VectorIndex, check_consistency, load_or_build
from gallery.records import FaceSpec, ImageSpec

D = 16
KEY = "test@1/16"


def photos(n=400, seed=0):
    """Unit vectors with a few strong and many weak directions, like face descriptors."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, D)) * np.r_[np.full(3, 3.0), np.full(D - 3, 0.3)] + 2.0
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_alpha_zero_only_centres_and_alpha_one_whitens():
    p = photos()
    w0 = fit_whitening(p, KEY, alpha=0.0)
    mu = p.mean(0)
    np.testing.assert_allclose(w0.apply(p), (p - mu) / np.linalg.norm(p - mu, axis=1, keepdims=True), atol=1e-6)
    w1 = fit_whitening(p, KEY, alpha=1.0, eps=1e-9)
    z = (p - w1.mean) @ w1.matrix
    np.testing.assert_allclose(np.cov(z.T), np.eye(D), atol=1e-6)
    wp = fit_whitening(p, KEY, alpha=0.25)
    lam = np.linalg.eigvalsh(np.cov(((p - wp.mean) @ wp.matrix).T))
    lam0 = np.linalg.eigvalsh(np.cov(p.T))
    assert lam.max() / lam.min() < lam0.max() / lam0.min()  # the spread of variances shrinks
    with pytest.raises(ValueError, match="more photos than dimensions"):
        fit_whitening(p[:D], KEY)


def test_file_roundtrip_checksum_and_embedder(tmp_path):
    path = tmp_path / "w.json"
    w = save_whitening(fit_whitening(photos(), KEY, fitted_on="synthetic"), path)
    import hashlib

    assert w.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() and w.space_id.endswith(w.sha256[:16])
    again = load_whitening(KEY, path)
    np.testing.assert_allclose(again.apply(photos(5, 1)), w.apply(photos(5, 1)))
    assert load_whitening("other@1/16", path) is None
    assert load_whitening(KEY, tmp_path / "missing.json") is None
    w2 = save_whitening(fit_whitening(photos(seed=3), KEY), path)
    assert w2.space_id != w.space_id  # a refit is another space: derived indexes and fits must follow


def gallery_with(tmp_path, n_subjects=12):
    g = open_gallery(tmp_path / "g.db")
    repo = g.repository()
    emb = repo.get_or_create_embedder("test", "1", D, "0" * 64)
    for s, v in enumerate(photos(n_subjects, seed=5)):
        repo.add_enrollment({"external_id": f"S{s:02d}"}, ImageSpec(sha256=f"{s:02d}".ljust(64, "b")),
                            [FaceSpec([0, 0, 1, 1], None, 1.0, None, v, emb)])
    return repo


def test_whitened_index_is_derived_current_and_separate(tmp_path, monkeypatch):
    repo = gallery_with(tmp_path)
    w = save_whitening(fit_whitening(photos(), KEY), tmp_path / "w.json")
    path = tmp_path / "g.whitened.faiss"
    vi = load_or_build(repo, path, transform=w.apply, space=w.space_id)
    ids, vecs = repo.iter_embeddings()
    np.testing.assert_allclose(vi.reconstruct(ids), w.apply(vecs), atol=1e-6)
    assert vi.space == w.space_id and VectorIndex.load(path).space == w.space_id
    assert check_consistency(repo, vi) == []  # transformed vectors are not a mismatch
    calls = []
    real = VectorIndex.from_repository.__func__
    monkeypatch.setattr(VectorIndex, "from_repository", classmethod(lambda cls, *a, **k: calls.append(k.get("space"))
                                                                    or real(cls, *a, **k)))
    load_or_build(repo, path, transform=w.apply, space=w.space_id)
    assert calls == []  # current: loaded
    w2 = save_whitening(fit_whitening(photos(seed=9), KEY), tmp_path / "w.json")
    vi2 = load_or_build(repo, path, transform=w2.apply, space=w2.space_id)
    assert calls == [w2.space_id] and vi2.space == w2.space_id  # another space: rebuilt
    plain = load_or_build(repo, tmp_path / "g.faiss")
    assert plain.space is None and calls[-1] is None
    np.testing.assert_allclose(plain.reconstruct(ids), vecs, atol=1e-6)
    with pytest.raises(ValueError, match="both"):
        VectorIndex.from_repository(repo, transform=w.apply)


def test_calibration_applies_only_in_its_space(tmp_path):
    path = tmp_path / "cal.json"
    cal = fit_calibration(np.random.default_rng(0).uniform(-1, 1, 1000), KEY, "fusion", 10, 100, "ref",
                          space="pca-whitening:abc")
    save_calibrations([cal], path)
    info = EmbedderInfo("test", "1", D, "0" * 64)
    assert info.key.slug == KEY
    assert load_calibration(info, "fusion", path, space="pca-whitening:abc").space == "pca-whitening:abc"
    assert load_calibration(info, "fusion", path) is None
    assert json.loads(path.read_text())[f"{KEY}|fusion"]["space"] == "pca-whitening:abc"


def test_shipped_whitening_matches_shipped_fits():
    """The committed sketch search space is the one fusion.json and calibration.json were fitted in."""
    from forensics.calibration import CALIBRATION_FILE
    from forensics.fusion import FUSION_FILE

    d = json.loads(FUSION_FILE.read_text())
    w = load_whitening(d["embedder"])
    assert w is not None and d["space"] == w.space_id
    cal = json.loads(CALIBRATION_FILE.read_text())
    assert {v["space"] for k, v in cal.items() if k.startswith(d["embedder"] + "|")} == {w.space_id}
    assert w.matrix.shape == (128, 128) and np.allclose(w.matrix, w.matrix.T, atol=1e-6)
