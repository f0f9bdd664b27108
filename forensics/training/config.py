"""The sketch inverter's training configuration: defaults, and a JSON file merged over them."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from forensics.inversion.network import InverterConfig
from forensics.training.adversarial import DiscriminatorConfig
from forensics.training.losses import LossWeights

DEFAULTS: dict = {
    "name": "inverter",
    "seed": 0,
    "cache": "runs/cache/chips.npz",
    "dlib_weights": None,  # None: $FORENSICS_DLIB_WEIGHTS, else face_recognition_models' file
    "model": InverterConfig().to_dict(),
    "loss": LossWeights().to_dict(),
    "gan": DiscriminatorConfig().to_dict(),  # used only when loss.adversarial > 0
    "data": {"p_real": 0.5, "styles": ["line", "pencil", "colour"], "augment": True, "num_workers": 8,
             "caricature": 0.0},  # caricature: the largest exaggeration of a synthesized sketch (ChipDataset)
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
    # JSON list of the FS2K validation identities the checkpoint is chosen on (None: all 200 pairs);
    # scripts/fs2k_select_identities.py writes the select half of benchmarks/common.py's protocol
    "select_identities": None,
    "export": {"dtype": "float16", "name": "csi-sketch-inverter"},
}


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def load_config(path: Path | None, overrides: dict | None = None) -> dict:
    """`DEFAULTS`, with the JSON file at `path` (if any) and then `overrides` merged over them."""
    cfg = DEFAULTS
    if path is not None:
        cfg = _merge(cfg, json.loads(Path(path).read_text()))
    cfg = _merge(cfg, overrides or {})
    InverterConfig.from_dict(cfg["model"])  # validate early
    LossWeights.from_dict(cfg["loss"])
    return cfg
