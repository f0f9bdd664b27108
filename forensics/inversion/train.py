"""Train the sketch inverter (Convolutional Sketch Inversion with an identity loss).

    python -m forensics.inversion.train --config configs/inverter.json [--resume]
        [--device cuda|cpu] [--max-minutes M] [--run-dir DIR] [--export PATH]

Reads aligned chips from the cache built by ``python -m forensics.inversion.data`` (no face
detection happens here, so facenet-pytorch is not needed). What it does, top to bottom:

1. config (JSON, merged over `DEFAULTS`), run folder ``runs/<name>`` (or ``--run-dir``),
   logging to ``train.log`` and stdout, metrics to ``metrics.jsonl``;
2. seeds; CUDA: bf16 autocast, channels_last, TF32; CPU: 2 threads;
3. data: `ChipDataset` (real CUFS/FS2K train pairs + LFW photos with synthesized sketches);
   sample k of the run is a pure function of (seed, k), so resuming replays the same data;
4. model `SketchInverter`, frozen dlib ResNet as the loss network, Adam, linear warm-up then
   cosine decay; with ``--max-minutes`` the decay also follows the clock (whichever of
   step/steps and elapsed/allowed time is further along), so a time-boxed run still anneals;
   with ``loss.adversarial > 0`` also a conditional PatchGAN discriminator (config ``gan``,
   `forensics.inversion.adversarial`), trained one step per inverter step;
5. every ``eval_every`` steps: the 200 FS2K validation pairs (never trained on): closed-set
   rank-1 among the 200 validation photos for the raw sketches and for the inverted ones
   (cosine of L2-normalised dlib descriptors), mean identity cosine synth↔photo; the best
   (score = rank-1 inverted + 0.1 x mean cosine; with ``"selection": "whitened"`` the rank-1 is
   measured in the sketch search space that queries search in, `forensics.whitening`) is kept in
   ``best.pt``;
6. ``last.pt`` (model, optimizer, discriminator if any, step, RNG states, best score, elapsed time) every
   ``checkpoint_every`` steps and on exit, SIGTERM/SIGINT and ``--max-minutes`` included;
   ``--resume`` continues from it;
7. at the end, the best weights are exported as a plain state_dict (fp16 by default) with a
   JSON sidecar (name, version, sha256, config, step, metrics) for `forensics.inversion.invert`.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import hashlib
import json
import logging
import math
import os
import random
import signal
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from forensics.inversion.adversarial import (
    DiscriminatorConfig,
    PatchDiscriminator,
    discriminator_loss,
    generator_loss,
)
from forensics.inversion.data import ChipCache, ChipDataset, eval_cache_path
from forensics.inversion.losses import InversionLoss, LossWeights
from forensics.inversion.network import InverterConfig, SketchInverter, count_parameters

DEFAULTS: dict = {
    "name": "inverter",
    "seed": 0,
    "cache": "runs/cache/chips.npz",
    "dlib_weights": None,  # None: $FORENSICS_DLIB_WEIGHTS, else face_recognition_models' file
    "model": InverterConfig().to_dict(),
    "loss": LossWeights().to_dict(),
    "gan": DiscriminatorConfig().to_dict(),  # used only when loss.adversarial > 0
    "data": {"p_real": 0.5, "styles": ["line", "pencil", "colour"], "augment": True, "num_workers": 8},
    "optim": {"lr": 2e-4, "betas": [0.9, 0.999], "weight_decay": 0.0, "warmup_steps": 200,
              "min_lr_frac": 0.02, "grad_clip": 1.0},
    "batch_size": 48,
    "steps": 20000,
    "eval_every": 500,
    "checkpoint_every": 500,
    "log_every": 50,
    "compile": False,
    "init": None,  # exported weights (.pt + sidecar) to start from (fine-tuning); model config must match
    "selection": "raw",  # rank-1 of the selection score: "raw" descriptor space or "whitened" (sketch search space)
    "export": {"dtype": "float16", "name": "csi-sketch-inverter"},
}

log = logging.getLogger("forensics.inversion.train")


# --------------------------------------------------------------------------------------------
# Config, logging, seeding
# --------------------------------------------------------------------------------------------


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def load_config(path: Path | None, overrides: dict | None = None) -> dict:
    cfg = DEFAULTS
    if path is not None:
        cfg = _merge(cfg, json.loads(Path(path).read_text()))
    cfg = _merge(cfg, overrides or {})
    InverterConfig.from_dict(cfg["model"])  # validate early
    LossWeights.from_dict(cfg["loss"])
    return cfg


def setup_logging(run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger("forensics.inversion")
    root.setLevel(logging.INFO)
    for h in list(root.handlers):
        root.removeHandler(h)
    fmt = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")
    for h in (logging.FileHandler(run_dir / "train.log"), logging.StreamHandler(sys.stdout)):
        h.setFormatter(fmt)
        root.addHandler(h)
    root.propagate = False


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict:
    s = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        s["cuda"] = torch.cuda.get_rng_state_all()
    return s


def set_rng_state(s: dict) -> None:
    random.setstate(s["python"])
    np.random.set_state(s["numpy"])
    torch.set_rng_state(s["torch"])
    if "cuda" in s and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


# --------------------------------------------------------------------------------------------
# Learning rate
# --------------------------------------------------------------------------------------------


def lr_at(progress: float, step: int, optim_cfg: dict) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine from lr to lr*min_lr_frac as progress → 1."""
    lr, lo = optim_cfg["lr"], optim_cfg["lr"] * optim_cfg["min_lr_frac"]
    warm = optim_cfg["warmup_steps"]
    if step < warm:
        return lr * (step + 1) / warm
    p = min(max(progress, 0.0), 1.0)
    return lo + 0.5 * (lr - lo) * (1.0 + math.cos(math.pi * p))


# --------------------------------------------------------------------------------------------
# Checkpoints and export
# --------------------------------------------------------------------------------------------


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _state_dict(model: torch.nn.Module) -> dict:
    m = getattr(model, "_orig_mod", model)  # torch.compile wrapper
    return {k: v.detach().cpu().clone() for k, v in m.state_dict().items()}


def save_checkpoint(path: Path, model, optimizer, state: dict, disc=None, disc_optimizer=None) -> None:
    extra = {} if disc is None else {"disc": _state_dict(disc), "disc_optimizer": disc_optimizer.state_dict()}
    _atomic_save({"model": _state_dict(model), "optimizer": optimizer.state_dict(), "rng": rng_state(), **state,
                  **extra}, path)


def _optimizer_to(optimizer, device) -> None:
    for st in optimizer.state.values():  # Adam moments onto the model's device
        for k, v in st.items():
            if torch.is_tensor(v) and k != "step":
                st[k] = v.to(device)


def load_checkpoint(path: Path, model, optimizer=None, device="cpu", disc=None, disc_optimizer=None) -> dict:
    ck = torch.load(path, map_location="cpu", weights_only=False)
    getattr(model, "_orig_mod", model).load_state_dict(ck["model"])
    if optimizer is not None and "optimizer" in ck:
        optimizer.load_state_dict(ck["optimizer"])
        _optimizer_to(optimizer, device)
    if disc is not None:
        if "disc" not in ck:  # the adversarial term was switched on for this run after the checkpoint
            log.info("%s holds no discriminator: it starts from scratch", path)
        else:
            disc.load_state_dict(ck["disc"])
            if disc_optimizer is not None:
                disc_optimizer.load_state_dict(ck["disc_optimizer"])
                _optimizer_to(disc_optimizer, device)
    if "rng" in ck:
        set_rng_state(ck["rng"])
    return ck


def export_weights(state_dict: dict, path: Path, cfg: dict, step: int, metrics: dict) -> dict:
    """A plain state_dict (fp16 or fp32) + ``<path>.json`` sidecar for `invert.load_inverter`."""
    from forensics.inversion.invert import sidecar_path

    dtype = {"float16": torch.float16, "float32": torch.float32}[cfg["export"]["dtype"]]
    sd = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in state_dict.items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_save(sd, path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    side = {
        "name": cfg["export"]["name"],
        "version": f"{cfg['name']}-step{step}",
        "sha256": sha,
        "dtype": cfg["export"]["dtype"],
        "config": {"model": cfg["model"], "train": cfg},
        "step": step,
        "metrics": metrics,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    sidecar_path(path).write_text(json.dumps(side, indent=1) + "\n")
    return side


# --------------------------------------------------------------------------------------------
# Evaluation on the FS2K validation pairs
# --------------------------------------------------------------------------------------------


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _ranks(q: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Rank (0 = first) of the true gallery item i for query i, cosine similarity."""
    s = _unit(q) @ _unit(g).T
    return (s > s.diagonal()[:, None]).sum(1)


class Evaluator:
    """Closed-set identification of the validation sketches among the validation photos."""

    def __init__(self, cache: ChipCache, dlib, device, dataset="fs2k", split="val", batch=50, selection="raw"):
        sk, ph, self.identities = cache.pair_chips(dataset, split)
        self.subsets = cache.subset[cache.pairs(dataset, split)[:, 1]]
        self.device, self.batch, self.dlib = device, batch, dlib
        self.sketch = torch.from_numpy(sk).permute(0, 3, 1, 2).contiguous()
        self.photo = torch.from_numpy(ph).permute(0, 3, 1, 2).contiguous()
        self.d_photo = self._embed(self.photo)
        self.d_raw = self._embed(self.sketch)
        from forensics.whitening import load_dlib_whitening

        self.whitening = load_dlib_whitening()  # the sketch search space
        if selection not in ("raw", "whitened") or (selection == "whitened" and self.whitening is None):
            raise ValueError(f"selection {selection!r}: 'raw', or 'whitened' with forensics/weights/whitening.json")
        self.selection = selection

    @torch.no_grad()
    def _embed(self, chips_u8: torch.Tensor, model=None) -> torch.Tensor:
        out = []
        for i in range(0, len(chips_u8), self.batch):
            x = chips_u8[i:i + self.batch].to(self.device).float()
            if model is not None:
                x = model(x).clamp(0, 255).round()  # what invert_chips hands on: uint8 pixels
            out.append(self.dlib(x).float().cpu())
        return torch.cat(out)

    @torch.no_grad()
    def synth(self, model, n: int) -> np.ndarray:
        x = self.sketch[:n].to(self.device).float()
        return model(x).clamp(0, 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()

    @torch.no_grad()
    def __call__(self, model) -> dict:
        was = model.training
        model.eval()
        d_inv = self._embed(self.sketch, model)
        model.train(was)
        r_raw, r_inv = _ranks(self.d_raw, self.d_photo), _ranks(d_inv, self.d_photo)
        r_fused = _ranks(_unit(self.d_raw) + _unit(d_inv), self.d_photo)
        cos = lambda a: float((_unit(a) * _unit(self.d_photo)).sum(1).mean())  # noqa: E731
        m = {
            "n": len(self.d_photo),
            "rank1_raw": float((r_raw == 0).float().mean()), "rank1_inv": float((r_inv == 0).float().mean()),
            "rank5_raw": float((r_raw < 5).float().mean()), "rank5_inv": float((r_inv < 5).float().mean()),
            "rank1_fused": float((r_fused == 0).float().mean()),
            "cos_raw": cos(self.d_raw), "cos_inv": cos(d_inv),
        }
        if self.whitening is not None:  # as queries search since session 7
            wh = lambda d: torch.from_numpy(self.whitening.apply(d.numpy()))  # noqa: E731
            m["rank1_inv_whitened"] = float((_ranks(wh(d_inv), wh(self.d_photo)) == 0).float().mean())
            m["rank1_raw_whitened"] = float((_ranks(wh(self.d_raw), wh(self.d_photo)) == 0).float().mean())
        m["score"] = m["rank1_inv_whitened" if self.selection == "whitened" else "rank1_inv"] + 0.1 * m["cos_inv"]
        if len(set(self.subsets)) > 1:  # e.g. CUFS parts (ranked within the whole closed set)
            m["per_subset"] = {
                str(g): {"n": int(sel.sum()), "rank1_raw": float((r_raw[sel] == 0).float().mean()),
                         "rank1_inv": float((r_inv[sel] == 0).float().mean())}
                for g in sorted(set(self.subsets)) for sel in [torch.from_numpy(self.subsets == g)]}
        return m


def save_preview(ev: Evaluator, model, path: Path, n: int = 8) -> None:
    """A PNG: validation sketches (top), their inversions (middle), the true photos (bottom)."""
    from PIL import Image

    was = model.training
    model.eval()
    synth = ev.synth(model, n)
    model.train(was)
    rows = [ev.sketch[:n].permute(0, 2, 3, 1).numpy(), synth, ev.photo[:n].permute(0, 2, 3, 1).numpy()]
    grid = np.concatenate([np.concatenate(list(r), axis=1) for r in rows], axis=0)
    tmp = path.with_name(path.stem + ".tmp.png")
    Image.fromarray(grid).save(tmp)
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def _init_from(model: SketchInverter, weights: Path, model_cfg: dict) -> None:
    """Start from exported weights (SHA-256 checked against their sidecar) instead of random ones."""
    from forensics.inversion.invert import load_inverter

    src = load_inverter(weights, "cpu")
    if InverterConfig.from_dict(src.meta["config"]["model"]) != InverterConfig.from_dict(model_cfg):
        raise SystemExit(f"init: {weights} was trained with model {src.meta['config']['model']}, "
                         f"this config has {model_cfg}")
    model.load_state_dict(src.state_dict())
    log.info("initialised from %s (%s, sha256 %s)", weights, src.info.version, src.info.sha256[:16])


def _worker_init(_: int) -> None:
    # workers leave stopping to the main process, which saves a checkpoint first
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _Stop:
    """Set by SIGTERM/SIGINT; the loop checks it after every step."""

    def __init__(self):
        self.signal = None

    def __call__(self, signum, frame):
        self.signal = signum


def _load_dlib(cfg: dict, device):
    from forensics.models.dlib_resnet import load_dlib_resnet

    path = cfg.get("dlib_weights") or os.environ.get("FORENSICS_DLIB_WEIGHTS") or None
    return load_dlib_resnet(path, device=device)


def train(cfg: dict, run_dir: Path, device: str = "cpu", resume: bool = False, max_minutes: float | None = None,
          export_path: Path | None = None) -> dict:
    t_start = time.time()
    setup_logging(run_dir)
    (run_dir / "config.json").write_text(json.dumps(cfg, indent=1) + "\n")
    seed_everything(cfg["seed"])
    cuda = device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise SystemExit(f"--device {device}: this torch ({torch.__version__}) sees no CUDA device")
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    else:
        torch.set_num_threads(2)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()
    mem = torch.channels_last  # faster on CPU (mkldnn) as well as on CUDA

    # data
    cache = ChipCache(cfg["cache"])
    bs, steps = int(cfg["batch_size"]), int(cfg["steps"])
    d = cfg["data"]
    dataset = ChipDataset(cache, p_real=d["p_real"], styles=d["styles"], augment=d["augment"], seed=cfg["seed"],
                          length=steps * bs)
    log.info("run %s on %s: %d real train pairs, %d LFW photos, p_real=%.2f, batch %d, %d steps",
             cfg["name"], device, len(dataset.real_sketch), len(dataset.lfw), d["p_real"], bs, steps)

    # model, loss network, optimizer
    model = SketchInverter(cfg["model"]).to(device).to(memory_format=mem)
    dlib = _load_dlib(cfg, device)
    criterion = InversionLoss(dlib, cfg["loss"])
    o = cfg["optim"]
    optimizer = torch.optim.Adam(model.parameters(), lr=o["lr"], betas=tuple(o["betas"]), weight_decay=o["weight_decay"])
    log.info("model: %s, %.2fM parameters; loss weights %s", cfg["model"], count_parameters(model) / 1e6, cfg["loss"])
    w_adv = criterion.w.adversarial
    disc = disc_opt = None
    if w_adv > 0:
        gcfg = DiscriminatorConfig.from_dict(cfg.get("gan"))
        disc = PatchDiscriminator(gcfg).to(device).to(memory_format=mem)
        disc_opt = torch.optim.Adam(disc.parameters(), lr=gcfg.lr, betas=gcfg.betas)
        log.info("adversarial loss (conditional PatchGAN, LSGAN) weight %g from step %d: discriminator %s, "
                 "%.2fM parameters", w_adv, gcfg.start_step, gcfg.to_dict(), count_parameters(disc) / 1e6)

    state = {"step": 0, "best_score": -1.0, "best_step": -1, "best_metrics": None, "progress": 0.0,
             "elapsed": 0.0, "config": cfg}
    last, best = run_dir / "last.pt", run_dir / "best.pt"
    if resume and last.is_file():
        ck = load_checkpoint(last, model, optimizer, device, disc, disc_opt)
        for k in state:
            if k in ck and k != "config":
                state[k] = ck[k]
        log.info("resumed from %s at step %d (best score %.4f at step %d)", last, state["step"], state["best_score"],
                 state["best_step"])
    elif resume:
        log.info("--resume: no %s yet, starting fresh", last)
    if cfg.get("init") and not (resume and last.is_file()):
        _init_from(model, Path(cfg["init"]), cfg["model"])

    t_ev = time.time()
    evaluator = Evaluator(cache, dlib, device, selection=cfg.get("selection", "raw"))
    t_ev = time.time() - t_ev  # embedding 400 chips: about what one evaluation costs
    log.info("validation: %d FS2K pairs; raw sketches rank-1 %.3f", len(evaluator.d_photo),
             float((_ranks(evaluator.d_raw, evaluator.d_photo) == 0).float().mean()))
    fwd = torch.compile(model) if cfg.get("compile") and cuda else model

    stop = _Stop()
    old_handlers = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    budget = max_minutes * 60.0 if max_minutes else None
    progress0, elapsed0 = state["progress"], state["elapsed"]
    # time kept back for the final evaluations (FS2K val, CUFS test if present) and the export
    reserve = 4 * t_ev + 10 if budget else 0.0
    t_loop = time.time()

    def do_eval(step: int) -> dict:
        nonlocal reserve
        t = time.time()
        m = evaluator(model)
        m["step"] = step
        improved = m["score"] > state["best_score"]
        if improved:
            state.update(best_score=m["score"], best_step=step, best_metrics=m)
            _atomic_save({"model": _state_dict(model), "step": step, "metrics": m, "config": cfg}, best)
        save_preview(evaluator, model, run_dir / "preview.png")
        with open(run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"kind": "eval", **m}) + "\n")
        reserve = max(reserve, 3.5 * (time.time() - t) + 10)
        log.info("eval step %d: rank-1 raw %.3f -> inverted %.3f (fused %.3f), rank-5 %.3f -> %.3f, "
                 "cos %.3f -> %.3f%s [%.1f s]", step, m["rank1_raw"], m["rank1_inv"], m["rank1_fused"],
                 m["rank5_raw"], m["rank5_inv"], m["cos_raw"], m["cos_inv"], "  *best*" if improved else "",
                 time.time() - t)
        return m

    def checkpoint() -> None:
        state["elapsed"] = elapsed0 + time.time() - t_loop
        save_checkpoint(last, model, optimizer, state, disc, disc_opt)

    loader = DataLoader(dataset, batch_size=bs, sampler=range(state["step"] * bs, steps * bs),
                        num_workers=int(d["num_workers"]), pin_memory=cuda, drop_last=True,
                        worker_init_fn=_worker_init if d["num_workers"] else None,
                        persistent_workers=False, prefetch_factor=2 if d["num_workers"] else None)
    model.train()
    step, why = state["step"], "done"
    t_log, n_log, sums = time.time(), 0, {}
    last_eval_step = -1
    try:
        for sketch, photo in loader:
            if step >= steps:
                break
            # --max-minutes counts from the start of train(); the final evaluations must fit in it
            deadline = t_start + budget - reserve if budget else None
            time_frac = (time.time() - t_loop) / max(deadline - t_loop, 1.0) if budget else 0.0
            # monotone: a resumed run continues the schedule where the last one left it
            state["progress"] = max(progress0, step / steps, progress0 + (1.0 - progress0) * time_frac)
            lr = lr_at(state["progress"], step, o)
            for g in optimizer.param_groups:
                g["lr"] = lr
            if disc is not None:  # the discriminator's rate follows the same schedule
                for g in disc_opt.param_groups:
                    g["lr"] = gcfg.lr * lr / o["lr"]
            sketch = sketch.to(device, non_blocking=True).float().contiguous(memory_format=mem)
            photo = photo.to(device, non_blocking=True).float().contiguous(memory_format=mem)
            with amp:
                synth = fwd(sketch)
                loss, parts = criterion(synth, photo)
                if disc is not None and step >= gcfg.start_step:
                    disc.requires_grad_(False)
                    parts["adv_g"] = generator_loss(disc, sketch, synth)
                    loss = loss + w_adv * parts["adv_g"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if o.get("grad_clip"):
                torch.nn.utils.clip_grad_norm_(model.parameters(), o["grad_clip"])
            optimizer.step()
            if disc is not None:
                disc.requires_grad_(True)
                with amp:
                    d_loss = discriminator_loss(disc, sketch, synth, photo)
                disc_opt.zero_grad(set_to_none=True)
                d_loss.backward()
                disc_opt.step()
                parts["adv_d"] = d_loss
            step += 1
            state["step"] = step
            n_log += 1
            for k, v in {"loss": loss, **parts}.items():
                sums[k] = sums.get(k, 0.0) + v.detach()
            if step % cfg["log_every"] == 0 or step == 1:
                avg = {k: float(v) / n_log for k, v in sums.items()}
                rate = n_log / (time.time() - t_log)
                log.info("step %d/%d  lr %.2e  %s  %.2f steps/s (%.0f img/s)  progress %.3f", step, steps, lr,
                         "  ".join(f"{k} {v:.4f}" for k, v in avg.items()), rate, rate * bs, state["progress"])
                with open(run_dir / "metrics.jsonl", "a") as f:
                    f.write(json.dumps({"kind": "train", "step": step, "lr": lr, "steps_per_s": rate, **avg}) + "\n")
                t_log, n_log, sums = time.time(), 0, {}
            if step % cfg["eval_every"] == 0:
                do_eval(step)
                last_eval_step = step
            if step % cfg["checkpoint_every"] == 0:
                checkpoint()
            if stop.signal is not None:
                why = f"signal {stop.signal}"
                break
            if budget and time.time() >= t_start + budget - reserve:
                why = f"--max-minutes {max_minutes:g} reached"
                break
    except BaseException as e:  # the checkpoint below is still written; the log says why it stopped
        why = f"{type(e).__name__}: {e}"
        raise
    finally:
        del loader
        for s, h in old_handlers.items():
            signal.signal(s, h)
        checkpoint()
        log.info("stopped at step %d (%s); checkpoint %s", step, why, last)
    if last_eval_step != step and stop.signal is None:
        do_eval(step)
        checkpoint()  # with the final best score
    result = {"step": step, "best_step": state["best_step"], "best_metrics": state["best_metrics"], "stopped": why,
              "seconds": round(time.time() - t_start, 1)}
    if best.is_file():
        b = torch.load(best, map_location="cpu", weights_only=False)
        metrics = {"fs2k_val": b["metrics"]}
        held_out = eval_cache_path(cfg["cache"])
        if held_out.is_file() and stop.signal is None:
            # reported only: the CUFS test pairs never choose anything (best.pt is chosen on FS2K val)
            getattr(model, "_orig_mod", model).load_state_dict(b["model"])
            mt = Evaluator(ChipCache(held_out), dlib, device, dataset="cufs", split="test")(model)
            metrics["cufs_test"] = mt
            log.info("CUFS test (held out; best weights, step %d): rank-1 raw %.3f -> inverted %.3f (fused %.3f); %s",
                     b["step"], mt["rank1_raw"], mt["rank1_inv"], mt["rank1_fused"],
                     ", ".join(f"{k} {v['rank1_raw']:.3f}->{v['rank1_inv']:.3f}"
                               for k, v in mt.get("per_subset", {}).items()))
        result["metrics"] = metrics
        if export_path is not None:
            side = export_weights(b["model"], export_path, cfg, b["step"], metrics)
            log.info("exported best weights (step %d, FS2K val rank-1 %.3f) to %s (sha256 %s)", b["step"],
                     b["metrics"]["rank1_inv"], export_path, side["sha256"][:16])
            result["export"] = str(export_path)
    return result


def evaluate_weights(weights: Path, cfg: dict, device: str = "cpu") -> dict:
    """FS2K val and (if its cache exists) CUFS test metrics of exported weights."""
    from forensics.inversion.invert import load_inverter

    if not device.startswith("cuda"):
        torch.set_num_threads(2)
    model = load_inverter(weights, device)
    dlib = _load_dlib(cfg, device)
    out = {"weights": str(weights), "version": model.info.version,
           "fs2k_val": Evaluator(ChipCache(cfg["cache"]), dlib, device)(model)}
    held_out = eval_cache_path(cfg["cache"])
    if held_out.is_file():
        out["cufs_test"] = Evaluator(ChipCache(held_out), dlib, device, dataset="cufs", split="test")(model)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", type=Path, default=Path("configs/inverter.json"))
    ap.add_argument("--resume", action="store_true", help="continue from <run-dir>/last.pt if present")
    ap.add_argument("--device", default=None, help="cuda | cpu (default: cuda when available)")
    ap.add_argument("--max-minutes", type=float, default=None, help="stop gracefully (with a checkpoint) after M minutes")
    ap.add_argument("--run-dir", type=Path, default=None, help="default: runs/<name>")
    ap.add_argument("--export", type=Path, default=None, help="write the best weights here (+ .json sidecar); "
                    "default: <run-dir>/sketch_inverter.pt")
    ap.add_argument("--cache", default=None, help="override the config's chip cache path")
    ap.add_argument("--dlib-weights", default=None, help="dlib_face_recognition_resnet_model_v1.dat")
    ap.add_argument("--steps", type=int, default=None, help="override the config's steps")
    ap.add_argument("--workers", type=int, default=None, help="override the config's data.num_workers")
    ap.add_argument("--evaluate", type=Path, default=None, metavar="WEIGHTS",
                    help="only evaluate exported weights (FS2K val, and CUFS test if its cache exists), print JSON")
    args = ap.parse_args(argv)

    over: dict = {}
    if args.cache:
        over["cache"] = args.cache
    if args.dlib_weights:
        over["dlib_weights"] = args.dlib_weights
    if args.steps:
        over["steps"] = args.steps
    if args.workers is not None:
        over["data"] = {"num_workers": args.workers}
    cfg = load_config(args.config, over)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.evaluate:
        print(json.dumps(evaluate_weights(args.evaluate, cfg, device), indent=1), flush=True)
        return 0
    run_dir = args.run_dir or Path("runs") / cfg["name"]
    export = args.export or run_dir / "sketch_inverter.pt"
    res = train(cfg, run_dir, device=device, resume=args.resume, max_minutes=args.max_minutes, export_path=export)
    print(json.dumps(res, indent=1), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
