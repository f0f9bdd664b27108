"""Running a trained sketch inverter: load verified weights, invert aligned sketch chips.

The weights are a plain PyTorch state_dict (``forensics/weights/sketch_inverter.pt`` by default)
with a JSON sidecar beside it (``sketch_inverter.json``: name, version, sha256, config, metrics)
as written by ``python -m forensics.training.trainer``. The file's SHA-256 is checked against the
sidecar before anything is unpickled; a missing file, a missing or unreadable sidecar and a
checksum mismatch are each a clear `ModelWeightsError`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from forensics.errors import ModelWeightsError
from forensics.inversion.network import InverterConfig, SketchInverter

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "sketch_inverter.pt"


@dataclass(frozen=True)
class InverterInfo:
    """Which inverter made an image (recorded with every inverted probe)."""

    name: str
    version: str
    sha256: str


def sidecar_path(weights: Path) -> Path:
    return Path(weights).with_suffix(".json")


def load_inverter(path: str | Path | None = None, device: str | torch.device = "cpu") -> SketchInverter:
    """The inverter in eval mode, with ``.info`` (`InverterInfo`) and ``.meta`` (the sidecar)."""
    if path is None and os.environ.get("FORENSICS_INVERTER"):
        path = os.environ["FORENSICS_INVERTER"]
    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    side = sidecar_path(path)
    if not path.is_file():
        raise ModelWeightsError(
            f"{path}: sketch-inverter weights not found; train them with "
            "`forensics train-inverter` (see docs/models.md), or set FORENSICS_INVERTER to a weights file")
    if not side.is_file():
        raise ModelWeightsError(f"{side}: the sidecar (name, version, sha256, config) of {path.name} is missing")
    try:
        meta = json.loads(side.read_text())
        expected = str(meta["sha256"]).lower()
        model_cfg = InverterConfig.from_dict(meta["config"]["model"])
        info = InverterInfo(str(meta["name"]), str(meta["version"]), expected)
    except (ValueError, KeyError, TypeError) as e:
        raise ModelWeightsError(f"{side}: not a valid sketch-inverter sidecar ({e})") from None
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ModelWeightsError(
            f"{path}: SHA-256 {actual[:16]}… does not match {expected[:16]}… in {side.name}; "
            "the weights file is corrupt or not the one the sidecar describes")
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        model = SketchInverter(model_cfg)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except Exception as e:  # noqa: BLE001 - unpickling / shape errors of many kinds
        raise ModelWeightsError(f"{path}: not a sketch-inverter state_dict matching its sidecar ({e})") from None
    model.info = info
    model.meta = meta
    model.requires_grad_(False)
    return model.eval().to(device)


def invert_chips(model: SketchInverter, chips: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Photo-like chips (N, 150, 150, 3) uint8 from aligned sketch chips of the same shape."""
    chips = np.asarray(chips)
    if chips.dtype != np.uint8 or chips.ndim != 4 or chips.shape[-1] != 3:
        raise ValueError(f"expected uint8 chips (N, H, W, 3), got {chips.dtype} {chips.shape}")
    device = next(model.parameters()).device
    out = np.empty_like(chips)
    with torch.inference_mode():
        for i in range(0, len(chips), batch_size):
            x = torch.from_numpy(np.array(chips[i:i + batch_size], copy=True)).to(device).permute(0, 3, 1, 2).float()
            y = model(x).clamp(0, 255).round().to(torch.uint8)
            out[i:i + batch_size] = y.permute(0, 2, 3, 1).cpu().numpy()
    return out


def invert_sketch_file(sketch: Path, out: Path, aligned_out: Path | None = None, inverter=None,
                       select: str = "largest") -> dict:
    """Detect and align the face in a sketch file, invert it, write the synthesized 150x150 face
    (and, with `aligned_out`, the aligned sketch). Returns what was done (hashes, detection)."""
    from PIL import Image

    from forensics.detect import FaceDetector, check_face_selection
    from forensics.images import load_image, sha256_file
    from forensics.outputs import check_extension, image_extensions, output_errors
    from forensics.pipeline import detect_faces

    check_face_selection(select)
    out = check_extension(out, "--out", image_extensions())
    loaded = load_image(sketch)
    (det,) = detect_faces(FaceDetector(), [loaded], kind="sketch", select=select)
    if isinstance(det, Exception):
        raise det
    inverter = inverter or load_inverter()
    synth = invert_chips(inverter, det.chip[None])[0]
    with output_errors(out, "--out"):
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(synth).save(out)
        if aligned_out is not None:
            Image.fromarray(det.chip).save(aligned_out)
    return {"sketch_sha256": loaded.sha256, "detection": det.face.method, "out": str(out),
            "out_sha256": sha256_file(out), "inverter": inverter.info}
