"""The trainer: learning-rate schedule, checkpoints, a tiny run with resume and export, evaluation,
the adversarial term's checkpointing (a tiny synthetic chip cache stands in for the real one)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from forensics.inversion.invert import InverterInfo, invert_chips, load_inverter
from forensics.inversion.artist_styles import ARTIST_STYLES
from forensics.inversion.network import SketchInverter
from forensics.training import data as D
from forensics.training import trainer as T
from forensics.training.checkpoints import load_checkpoint, save_checkpoint
from forensics.training.config import load_config
from forensics.training.data import ChipCache
from forensics.training.evaluation import Evaluator

ROOT = Path(__file__).resolve().parents[3]


def test_lr_schedule():
    o = {"lr": 1e-3, "min_lr_frac": 0.1, "warmup_steps": 10}
    assert T.lr_at(0.0, 0, o) == pytest.approx(1e-4)
    assert T.lr_at(0.0, 10, o) == pytest.approx(1e-3)
    assert T.lr_at(1.0, 1000, o) == pytest.approx(1e-4)
    assert T.lr_at(0.5, 500, o) == pytest.approx(0.55e-3)


def test_checkpoint_round_trip_restores_step_and_weights(tmp_path, tiny_inverter):
    torch.manual_seed(0)
    m = SketchInverter(tiny_inverter)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    m(torch.rand(1, 3, 150, 150) * 255).mean().backward()
    opt.step()
    save_checkpoint(tmp_path / "last.pt", m, opt, {"step": 123, "best_score": 0.5})
    expected = torch.rand(3)  # the RNG state is restored too
    torch.manual_seed(99)
    m2 = SketchInverter(tiny_inverter)
    opt2 = torch.optim.Adam(m2.parameters(), lr=1e-3)
    ck = load_checkpoint(tmp_path / "last.pt", m2, opt2)
    assert ck["step"] == 123 and ck["best_score"] == 0.5
    for (k, v), v2 in zip(m.state_dict().items(), m2.state_dict().values()):
        assert torch.equal(v, v2), k
    assert opt2.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.slow
def test_train_resume_and_export(tmp_path, chip_cache_path, monkeypatch, fake_dlib, tiny_inverter):
    monkeypatch.setattr(T, "load_loss_network", lambda cfg, device: fake_dlib())
    cfg = load_config(None, {"name": "t", "cache": str(chip_cache_path), "model": tiny_inverter, "batch_size": 2,
                             "steps": 2, "eval_every": 2, "checkpoint_every": 1, "log_every": 1,
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


def test_evaluator_perfect_when_synth_is_the_photo(chip_cache_path, fake_dlib):
    ev = Evaluator(ChipCache(chip_cache_path), fake_dlib(), "cpu")

    class Oracle(torch.nn.Module):  # "inverts" every val sketch into its true photo
        def forward(self, x):
            return ev.photo[: len(x)].float() if len(x) == len(ev.photo) else x

    m = ev(Oracle())
    assert m["n"] == 4 and m["rank1_inv"] == 1.0 and m["cos_inv"] == pytest.approx(1.0, abs=1e-5)
    assert m["rank1_inv_whitened"] == 1.0 and m["score"] == pytest.approx(1.1, abs=1e-5)
    # selection in the sketch search space: the score's rank-1 is the whitened one
    ev_w = Evaluator(ChipCache(chip_cache_path), fake_dlib(), "cpu", selection="whitened")
    mw = ev_w(torch.nn.Identity())
    assert mw["score"] == pytest.approx(mw["rank1_inv_whitened"] + 0.1 * mw["cos_inv"])
    with pytest.raises(ValueError, match="selection"):
        Evaluator(ChipCache(chip_cache_path), fake_dlib(), "cpu", selection="best")


def test_evaluator_keeps_only_the_identities_asked_for(chip_cache_path, fake_dlib):
    ev = Evaluator(ChipCache(chip_cache_path), fake_dlib(), "cpu", identities=["fs2k_val_3", "fs2k_val_1"])
    assert list(ev.identities) == ["fs2k_val_1", "fs2k_val_3"] and len(ev.photo) == len(ev.d_raw) == 2
    assert ev(torch.nn.Identity())["n"] == 2
    for wanted in (["fs2k_val_1", "fs2k_val_9"], []):  # one not in the cache, or none: an error, not all pairs
        with pytest.raises(ValueError, match="identities"):
            Evaluator(ChipCache(chip_cache_path), fake_dlib(), "cpu", identities=wanted)


@pytest.mark.slow
@pytest.mark.parametrize("spectral_norm", [False, True])
def test_train_with_adversarial_loss_checkpoints_and_resumes_the_discriminator(
        tmp_path, chip_cache_path, monkeypatch, fake_dlib, tiny_inverter, spectral_norm):
    monkeypatch.setattr(T, "load_loss_network", lambda cfg, device: fake_dlib())
    cfg = load_config(None, {"name": "g", "cache": str(chip_cache_path), "model": tiny_inverter, "batch_size": 2,
                             "steps": 2, "eval_every": 2, "checkpoint_every": 1, "log_every": 1,
                             "loss": {"adversarial": 0.1},
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


#: the GPU-ready artist recipe shrunk to a CPU smoke run: its losses and data mix unchanged, a tiny
#: model (the configured one is checked on its own: building it and one training step of batch 2
#: take ~40 s on two shared cores)
ARTIST_SMOKE = {"batch_size": 2, "steps": 2, "eval_every": 2, "checkpoint_every": 1, "log_every": 1,
                "data": {"num_workers": 0}, "optim": {"warmup_steps": 1}, "gan": {"start_step": 0}}
ARTIST_CONFIG = ROOT / "configs" / "inverter_artist.json"


def test_artist_config_model_fits_the_export_limit():
    cfg = load_config(ARTIST_CONFIG)
    assert (cfg["model"]["base"], cfg["model"]["n_res"]) == (48, 6)
    assert cfg["loss"]["identity_whitened"] > 0 and cfg["loss"]["adversarial"] > 0 and cfg["selection"] == "whitened"
    assert cfg["select_identities"]  # the checkpoint is chosen on the select half only
    assert set(ARTIST_STYLES) <= set(cfg["data"]["styles"]) and cfg["data"]["caricature"] > 0
    n = sum(p.numel() for p in SketchInverter(cfg["model"]).parameters())
    assert 2 * n < 50e6  # float16 export under 50 MB


@pytest.mark.slow
def test_artist_config_smoke_run(tmp_path, chip_cache_path, monkeypatch, fake_dlib, tiny_inverter):
    """configs/inverter_artist.json loads, its styles and caricature feed the loader, the loss with the
    whitened identity term and the adversarial term computes, a checkpoint and an export are written."""
    monkeypatch.setattr(T, "load_loss_network", lambda cfg, device: fake_dlib())
    drawn: list[tuple[str, float]] = []
    real_sketchify = D.sketchify

    def recording_sketchify(photo, style, rng, caricature):
        drawn.append((style, caricature))
        return real_sketchify(photo, style, rng, caricature=caricature)

    monkeypatch.setattr(D, "sketchify", recording_sketchify)
    select = tmp_path / "select.json"
    select.write_text(json.dumps(["fs2k_val_0", "fs2k_val_2"]))
    cfg = load_config(ARTIST_CONFIG, {**ARTIST_SMOKE, "cache": str(chip_cache_path), "model": tiny_inverter,
                                      "select_identities": str(select)})
    run = tmp_path / "run"
    res = T.train(cfg, run, export_path=tmp_path / "w" / "inv.pt")
    assert res["step"] == 2 and (run / "last.pt").is_file() and (run / "best.pt").is_file()
    assert res["best_metrics"]["n"] == 2 and "validation: 2 FS2K pairs (those of" in (run / "train.log").read_text()
    train_lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"train"' in x]
    assert train_lines and all({"identity_whitened", "adv_g", "adv_d"} <= set(x) for x in train_lines)
    assert all(np.isfinite(x["identity_whitened"]) for x in train_lines)
    assert load_inverter(tmp_path / "w" / "inv.pt").meta["config"]["train"]["data"] == cfg["data"]
    # every style of the recipe, and caricatures of up to the configured strength, reach the loader
    ds = D.ChipDataset(ChipCache(chip_cache_path), p_real=0.0, styles=cfg["data"]["styles"],
                       caricature=cfg["data"]["caricature"], length=100)
    for k in range(40):
        ds.sample(k)
    assert {s for s, _ in drawn} == set(cfg["data"]["styles"])
    assert max(c for _, c in drawn) > 0.1 and all(0.0 <= c <= cfg["data"]["caricature"] for _, c in drawn)


def test_command_line_overrides_the_selection_identities():
    args = T._arguments(["--select-identities", "ids.json", "--workers", "3"])
    assert T._overrides(args) == {"select_identities": "ids.json", "data": {"num_workers": 3}}
