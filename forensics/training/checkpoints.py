"""Reproducible training state: seeds and RNG states, checkpoints, and exported weights."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import random
from pathlib import Path

import numpy as np
import torch

from forensics.inversion.invert import sidecar_path

log = logging.getLogger("forensics.training.checkpoints")


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


def atomic_save(obj, path: Path) -> None:
    """`torch.save` to a temporary file, then renamed over `path` (never a half-written file)."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def state_dict_of(model: torch.nn.Module) -> dict:
    """A CPU copy of the model's state_dict (of the model itself when it is `torch.compile`d)."""
    m = getattr(model, "_orig_mod", model)
    return {k: v.detach().cpu().clone() for k, v in m.state_dict().items()}


def save_checkpoint(path: Path, model, optimizer, state: dict, disc=None, disc_optimizer=None) -> None:
    extra = {} if disc is None else {"disc": state_dict_of(disc), "disc_optimizer": disc_optimizer.state_dict()}
    atomic_save({"model": state_dict_of(model), "optimizer": optimizer.state_dict(), "rng": rng_state(), **state,
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
    dtype = {"float16": torch.float16, "float32": torch.float32}[cfg["export"]["dtype"]]
    sd = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in state_dict.items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_save(sd, path)
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
