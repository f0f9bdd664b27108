"""Sketch inverter: network shapes, losses, data, checkpoints, export and verified loading.

Fast (no real data needed): a tiny synthetic chip cache stands in for the real one.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from forensics.errors import ModelWeightsError
from forensics.inversion.data import ChipCache, ChipDataset, Item, augment_pair, write_cache
from forensics.inversion.invert import InverterInfo, invert_chips, load_inverter, sidecar_path
from forensics.inversion.losses import InversionLoss, identity_loss, perceptual_loss, total_variation
from forensics.inversion.network import InverterConfig, SketchInverter
from forensics.inversion.train import (
    Evaluator,
    export_weights,
    load_checkpoint,
    load_config,
    lr_at,
    save_checkpoint,
)

TINY = {"base": 4, "n_res": 1}


def _dlib():
    try:
        from forensics.models.dlib_resnet import load_dlib_resnet

        return load_dlib_resnet()
    except (ImportError, FileNotFoundError) as e:  # pragma: no cover
        pytest.skip(f"dlib weights unavailable: {e}")


@pytest.fixture(scope="module")
def dlib():
    return _dlib()


class FakeDlib(torch.nn.Module):
    """A tiny stand-in with dlib's interface (0..255 RGB 150x150 in; 128-D out, 4 feature maps)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.convs = torch.nn.ModuleList([torch.nn.Conv2d(3, 4, 5, 5)] +
                                         [torch.nn.Conv2d(4, 4, 3, 2, 1) for _ in range(3)])
        self.fc = torch.nn.Linear(4, 128)
        self.requires_grad_(False)

    def forward_features(self, x):
        x, feats = x / 128.0 - 1.0, []
        for c in self.convs:
            x = torch.relu(c(x))
            feats.append(x)
        return self.fc(x.mean((2, 3))), feats

    def forward(self, x):
        return self.forward_features(x)[0]


def _face_like(rng, n):
    """Smooth random images (JPEG-friendly), uint8 (n,150,150,3)."""
    low = rng.uniform(0, 255, (n, 10, 10, 3)).astype(np.float32)
    t = torch.nn.functional.interpolate(torch.from_numpy(low).permute(0, 3, 1, 2), size=(150, 150), mode="bilinear")
    return t.permute(0, 2, 3, 1).round().clamp(0, 255).byte().numpy()


@pytest.fixture(scope="module")
def cache_path(tmp_path_factory):
    rng = np.random.default_rng(0)
    chips, items = [], []
    for ds, split, n in [("cufs", "train", 3), ("cufs", "test", 2), ("fs2k", "train", 3), ("fs2k", "val", 4)]:
        ph = _face_like(rng, n)
        for i in range(n):
            ident = f"{ds}_{split}_{i}"
            grey = ph[i].mean(2, keepdims=True).repeat(3, 2).astype(np.uint8)
            chips += [ph[i], 255 - grey]
            items += [Item(None, ds, split, "photo", ident, "s", -1, f"{ident}_p"),
                      Item(None, ds, split, "sketch", ident, "s", 0 if ds == "fs2k" else -1, f"{ident}_s")]
    for i, c in enumerate(_face_like(rng, 4)):
        chips.append(c)
        items.append(Item(None, "lfw", "train", "photo", f"lfw_{i}", "lfw", -1, f"lfw_{i}"))
    path = tmp_path_factory.mktemp("cache") / "chips.npz"
    write_cache(path, chips, items, ["mtcnn"] * len(items), {"test": True})
    return path


# ---------------------------------------------------------------------------- network


@pytest.mark.parametrize("cfg", [{}, {"skips": True}, {"upsample": "deconv", "norm": "batch"}, {**TINY, "norm": "none"}])
def test_network_shape_and_range(cfg):
    torch.manual_seed(0)
    m = SketchInverter(cfg).eval()
    x = torch.rand(2, 3, 150, 150) * 255
    with torch.no_grad():
        y = m(x)
    assert y.shape == (2, 3, 150, 150)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 255.0
    if not cfg:  # the paper-sized network stays small
        assert sum(p.numel() for p in m.parameters()) * 4 < 10 * 2**20


def test_network_other_sizes_and_config_validation():
    m = SketchInverter(TINY)
    assert m(torch.rand(1, 3, 37, 150) * 255).shape == (1, 3, 37, 150)
    with pytest.raises(ValueError):
        InverterConfig.from_dict({"upsample": "bogus"})
    with pytest.raises(ValueError):
        InverterConfig.from_dict({"nope": 1})


# ---------------------------------------------------------------------------- losses


def test_identity_loss_gradient_flows_to_generator(dlib):
    torch.manual_seed(0)
    gen = SketchInverter(TINY)
    loss_fn = InversionLoss(dlib, {"pixel": 0.0, "identity": 1.0, "perceptual": 0.0, "tv": 0.0})
    sketch, photo = torch.rand(2, 3, 150, 150) * 255, torch.rand(2, 3, 150, 150) * 255
    total, parts = loss_fn(gen(sketch), photo)
    total.backward()
    assert set(parts) == {"identity"} and 0.0 <= float(parts["identity"].detach()) <= 2.0
    grads = [p.grad for p in gen.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    assert all(p.grad is None for p in dlib.parameters())  # the loss network stays frozen


def test_loss_parts_basic_properties(dlib):
    d = torch.randn(3, 128)
    assert float(identity_loss(d, d)) == pytest.approx(0.0, abs=1e-6)
    assert float(identity_loss(d, -d)) == pytest.approx(2.0, abs=1e-6)
    assert float(total_variation(torch.full((1, 3, 8, 8), 7.0))) == 0.0
    x = torch.rand(2, 3, 150, 150) * 255
    _, f = dlib.forward_features(x)
    assert float(perceptual_loss(f, f)) == pytest.approx(0.0, abs=1e-6)
    total, parts = InversionLoss(dlib)(x, x)
    assert float(total) == pytest.approx(0.0, abs=1e-4) and {"pixel", "identity", "perceptual"} <= set(parts)



def test_identity_loss_in_the_sketch_search_space(dlib):
    """loss.identity_whitened: 1 - cosine after the shipped whitening; zero on identical chips,
    gradients reach the generator, and it differs from the raw-space identity term."""
    import numpy as np

    from forensics.whitening import load_whitening

    w = load_whitening("dlib-resnet@v1/128")
    loss_fn = InversionLoss(dlib, {"pixel": 0.0, "identity": 0.0, "perceptual": 0.0, "identity_whitened": 1.0})
    x = torch.rand(2, 3, 150, 150) * 255
    total, parts = loss_fn(x, x)
    assert set(parts) == {"identity_whitened"} and float(total) == pytest.approx(0.0, abs=1e-5)
    d = dlib(x)
    np.testing.assert_allclose(F.normalize(loss_fn.whiten(d), dim=1).numpy(), w.apply(d.numpy()), atol=1e-5)
    torch.manual_seed(0)
    gen = SketchInverter(TINY)
    photo = torch.rand(2, 3, 150, 150) * 255
    total, parts = loss_fn(gen(x), photo)
    total.backward()
    assert sum(float(p.grad.abs().sum()) for p in gen.parameters()) > 0
    raw = InversionLoss(dlib, {"pixel": 0.0, "identity": 1.0, "perceptual": 0.0})(gen(x).detach(), photo)[0]
    assert float(raw) != pytest.approx(float(total.detach()), rel=1e-3)

# ---------------------------------------------------------------------------- data


def test_cache_pairs_and_dataset(cache_path):
    cache = ChipCache(cache_path)
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


def test_augment_pair_is_identical_for_both():
    rng = np.random.default_rng(1)
    img = _face_like(rng, 1)[0]
    a, b = augment_pair(img, img.copy(), np.random.default_rng(5))
    assert a.shape == img.shape and np.array_equal(a, b)
    same, _ = augment_pair(img, img, np.random.default_rng(5), max_shift=0, max_rot=0, max_scale=0, p_flip=0)
    assert np.array_equal(same, img)


# ---------------------------------------------------------------------------- training pieces


def test_lr_schedule():
    o = {"lr": 1e-3, "min_lr_frac": 0.1, "warmup_steps": 10}
    assert lr_at(0.0, 0, o) == pytest.approx(1e-4)
    assert lr_at(0.0, 10, o) == pytest.approx(1e-3)
    assert lr_at(1.0, 1000, o) == pytest.approx(1e-4)
    assert lr_at(0.5, 500, o) == pytest.approx(0.55e-3)


def test_checkpoint_round_trip_restores_step_and_weights(tmp_path):
    torch.manual_seed(0)
    m = SketchInverter(TINY)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    m(torch.rand(1, 3, 150, 150) * 255).mean().backward()
    opt.step()
    save_checkpoint(tmp_path / "last.pt", m, opt, {"step": 123, "best_score": 0.5})
    expected = torch.rand(3)  # the RNG state is restored too
    torch.manual_seed(99)
    m2 = SketchInverter(TINY)
    opt2 = torch.optim.Adam(m2.parameters(), lr=1e-3)
    ck = load_checkpoint(tmp_path / "last.pt", m2, opt2)
    assert ck["step"] == 123 and ck["best_score"] == 0.5
    for (k, v), v2 in zip(m.state_dict().items(), m2.state_dict().values()):
        assert torch.equal(v, v2), k
    assert opt2.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]
    assert torch.equal(torch.rand(3), expected)


def test_train_resume_and_export(tmp_path, cache_path, monkeypatch):
    from forensics.inversion import train as T

    monkeypatch.setattr(T, "_load_dlib", lambda cfg, device: FakeDlib())
    cfg = load_config(None, {"name": "t", "cache": str(cache_path), "model": TINY, "batch_size": 2, "steps": 2,
                             "eval_every": 2, "checkpoint_every": 1, "log_every": 1,
                             "data": {"num_workers": 0}, "optim": {"warmup_steps": 1}})
    run = tmp_path / "run"
    res = T.train(cfg, run, export_path=tmp_path / "w" / "inv.pt")
    assert res["step"] == 2 and (run / "best.pt").is_file() and (run / "preview.png").is_file()
    ck = torch.load(run / "last.pt", weights_only=False)
    assert ck["step"] == 2
    cfg["steps"] = 3
    res2 = T.train(cfg, run, resume=True)
    assert res2["step"] == 3
    evals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"rank1_raw", "rank1_inv", "cos_inv"} <= set(next(e for e in evals if e["kind"] == "eval"))
    assert "resumed from" in (run / "train.log").read_text()
    model = load_inverter(tmp_path / "w" / "inv.pt")
    assert isinstance(model.info, InverterInfo) and model.info.version == "t-step2"
    out = invert_chips(model, np.zeros((3, 150, 150, 3), np.uint8))
    assert out.shape == (3, 150, 150, 3) and out.dtype == np.uint8


def test_evaluator_perfect_when_synth_is_the_photo(cache_path):
    ev = Evaluator(ChipCache(cache_path), FakeDlib(), "cpu")

    class Oracle(torch.nn.Module):  # "inverts" every val sketch into its true photo
        def forward(self, x):
            return ev.photo[: len(x)].float() if len(x) == len(ev.photo) else x

    m = ev(Oracle())
    assert m["n"] == 4 and m["rank1_inv"] == 1.0 and m["cos_inv"] == pytest.approx(1.0, abs=1e-5)
    assert m["rank1_inv_whitened"] == 1.0 and m["score"] == pytest.approx(1.1, abs=1e-5)
    # selection in the sketch search space: the score's rank-1 is the whitened one
    ev_w = Evaluator(ChipCache(cache_path), FakeDlib(), "cpu", selection="whitened")
    mw = ev_w(torch.nn.Identity())
    assert mw["score"] == pytest.approx(mw["rank1_inv_whitened"] + 0.1 * mw["cos_inv"])
    with pytest.raises(ValueError, match="selection"):
        Evaluator(ChipCache(cache_path), FakeDlib(), "cpu", selection="best")


# ---------------------------------------------------------------------------- verified loading


def test_load_inverter_rejects_missing_and_mismatched(tmp_path):
    with pytest.raises(ModelWeightsError, match="not found"):
        load_inverter(tmp_path / "none.pt")
    m = SketchInverter(TINY)
    cfg = load_config(None, {"name": "x", "model": TINY})
    path = tmp_path / "inv.pt"
    export_weights(m.state_dict(), path, cfg, 7, {"rank1_inv": 0.1})
    loaded = load_inverter(path)
    assert loaded.info.sha256 == json.loads(sidecar_path(path).read_text())["sha256"]
    x = torch.rand(1, 3, 150, 150) * 255
    with torch.no_grad():  # fp16 export: close to the fp32 model
        assert float((loaded(x) - m.eval()(x)).abs().max()) < 3.0
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelWeightsError, match="SHA-256"):
        load_inverter(path)
    sidecar_path(path).unlink()
    with pytest.raises(ModelWeightsError, match="sidecar"):
        load_inverter(path)


# ---------------------------------------------------------------------------- adversarial (PatchGAN)


def test_patch_discriminator_shape_and_losses():
    from forensics.inversion.adversarial import PatchDiscriminator, discriminator_loss, generator_loss

    torch.manual_seed(0)
    d = PatchDiscriminator({"base": 8})
    sketch, photo = torch.rand(2, 3, 150, 150) * 255, torch.rand(2, 3, 150, 150) * 255
    out = d(sketch, photo)
    assert out.shape == (2, 1, 16, 16)  # 70x70 patches on a 150x150 chip
    synth = (photo + 1).requires_grad_(True)
    g = generator_loss(d, sketch, synth)
    g.backward()
    assert synth.grad is not None and synth.grad.abs().sum() > 0  # the term reaches the inverter's output
    synth.grad = None
    ld = discriminator_loss(d, sketch, synth, photo)
    ld.backward()
    assert synth.grad is None  # the discriminator's loss never trains the inverter
    assert all(p.grad is not None for p in d.parameters())
    with pytest.raises(ValueError, match="unknown discriminator options"):
        PatchDiscriminator({"bass": 8})


def test_discriminator_learns_to_tell_pairs_apart():
    """A few LSGAN steps separate true photos from a constant grey 'synthesis'."""
    from forensics.inversion.adversarial import PatchDiscriminator, discriminator_loss

    torch.manual_seed(0)
    d = PatchDiscriminator({"base": 8, "n_layers": 2})
    opt = torch.optim.Adam(d.parameters(), lr=2e-3, betas=(0.5, 0.999))
    rng = np.random.default_rng(0)
    photo = torch.from_numpy(_face_like(rng, 4)).permute(0, 3, 1, 2).float()
    sketch, synth = 255 - photo.mean(1, keepdim=True).repeat(1, 3, 1, 1), torch.full_like(photo, 128.0)
    for _ in range(60):
        opt.zero_grad()
        discriminator_loss(d, sketch, synth, photo).backward()
        opt.step()
    with torch.no_grad():
        assert d(sketch, photo).mean() - d(sketch, synth).mean() > 0.6  # targets 1 and 0


def test_spectral_norm_discriminator_has_unit_spectral_norms_and_still_learns():
    """With spectral_norm every convolution's weight (as used) has largest singular value ~1 and no
    instance norm is left; the discriminator still separates true pairs from a grey 'synthesis'."""
    from forensics.inversion.adversarial import PatchDiscriminator, discriminator_loss

    torch.manual_seed(0)
    d = PatchDiscriminator({"base": 8, "n_layers": 2, "spectral_norm": True})
    assert not any(isinstance(m, torch.nn.InstanceNorm2d) for m in d.modules())
    rng = np.random.default_rng(0)
    photo = torch.from_numpy(_face_like(rng, 4)).permute(0, 3, 1, 2).float()
    sketch, synth = 255 - photo.mean(1, keepdim=True).repeat(1, 3, 1, 1), torch.full_like(photo, 128.0)
    opt = torch.optim.Adam(d.parameters(), lr=2e-3, betas=(0.5, 0.999))
    losses = []
    for _ in range(150):
        opt.zero_grad()
        loss = discriminator_loss(d, sketch, synth, photo)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 4
    with torch.no_grad():
        for m in convs:  # the power iteration has run once per training forward
            sigma = torch.linalg.matrix_norm(m.weight.flatten(1), ord=2)
            assert 0.95 < float(sigma) < 1.05, float(sigma)
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_train_with_adversarial_loss_checkpoints_and_resumes_the_discriminator(tmp_path, cache_path, monkeypatch,
                                                                               spectral_norm):
    from forensics.inversion import train as T

    monkeypatch.setattr(T, "_load_dlib", lambda cfg, device: FakeDlib())
    cfg = load_config(None, {"name": "g", "cache": str(cache_path), "model": TINY, "batch_size": 2, "steps": 2,
                             "eval_every": 2, "checkpoint_every": 1, "log_every": 1, "loss": {"adversarial": 0.1},
                             "gan": {"base": 4, "n_layers": 2, "spectral_norm": spectral_norm},
                             "data": {"num_workers": 0}, "optim": {"warmup_steps": 1}})
    run = tmp_path / "run"
    T.train(cfg, run)
    ck = torch.load(run / "last.pt", weights_only=False)
    assert "disc" in ck and ck["disc_optimizer"]["state"][0]["step"] == 2
    assert any("parametrizations" in k for k in ck["disc"]) == spectral_norm  # the power-iteration state too
    train_lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"train"' in x]
    assert all("adv_g" in x and "adv_d" in x for x in train_lines)
    cfg["steps"] = 3
    T.train(cfg, run, resume=True)
    ck2 = torch.load(run / "last.pt", weights_only=False)
    assert ck2["step"] == 3 and ck2["disc_optimizer"]["state"][0]["step"] == 3  # continued, not restarted
    # without the adversarial weight no discriminator is made or saved
    cfg0 = {**cfg, "loss": {"adversarial": 0.0}, "steps": 1}
    T.train(cfg0, tmp_path / "run0")
    assert "disc" not in torch.load(tmp_path / "run0" / "last.pt", weights_only=False)
