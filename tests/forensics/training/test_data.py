"""The chip cache and the pair dataset (a tiny synthetic cache stands in for the real one)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forensics.training.data import ChipCache, ChipDataset, augment_pair


def test_cache_pairs_and_dataset(chip_cache_path):
    cache = ChipCache(chip_cache_path)
    assert len(cache.pairs("fs2k", "val")) == 4 and len(cache.pairs("cufs", "test")) == 2
    sk, ph, ids = cache.pair_chips("cufs", "train")
    assert sk.shape == (3, 150, 150, 3) and sk.dtype == np.uint8 and list(ids) == sorted(ids)
    ds = ChipDataset(cache, p_real=0.5, seed=3, length=50)
    # only train pairs: held-out CUFS test / FS2K val chips are never loaded
    assert len(ds.real_sketch) == 6 and len(ds.lfw) == 4
    a, b = ds[7], ds[7]
    assert a[0].shape == (3, 150, 150) and a[0].dtype == torch.uint8
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])  # item k is a function of (seed, k)
    kinds = {ds.sample(k)[2] for k in range(30)}
    assert kinds == {True, False}
    with pytest.raises(ValueError):
        ChipDataset(cache, real_splits=(("fs2k", "val"),))


def test_augment_pair_is_identical_for_both(face_like):
    rng = np.random.default_rng(1)
    img = face_like(rng, 1)[0]
    a, b = augment_pair(img, img.copy(), np.random.default_rng(5))
    assert a.shape == img.shape and np.array_equal(a, b)
    same, _ = augment_pair(img, img, np.random.default_rng(5), max_shift=0, max_rot=0, max_scale=0, p_flip=0)
    assert np.array_equal(same, img)
