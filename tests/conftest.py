"""Shared fixtures: the data folder, real images, and one loaded face pipeline per session."""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def need_data():
    if not (DATA / "lfw" / "manifest.csv").is_file() or not (DATA / "cufs" / "manifest.csv").is_file():
        pytest.skip(f"needs the CUFS and LFW data at {DATA} (see its README)")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    need_data()
    return DATA


@pytest.fixture(scope="session")
def pipeline():
    """The real pipeline (MTCNN + PyTorch dlib ResNet), loaded once."""
    from forensics.models.registry import load_embedder
    from forensics.pipeline import FacePipeline

    return FacePipeline(embedder=load_embedder())


LFW_PEOPLE = ["Aaron_Peirsol", "Abdullah_Gul", "Adrien_Brody", "Al_Gore", "Alejandro_Toledo"]


@pytest.fixture(scope="session")
def lfw_people() -> list[str]:
    """The LFW people of :func:`small_gallery_dir`, one subject each."""
    return list(LFW_PEOPLE)


@pytest.fixture()
def small_gallery_dir(tmp_path, data_dir, lfw_people) -> Path:
    """A folder per person with 2 LFW photos each (subject = folder name)."""
    root = tmp_path / "mugshots"
    for person in lfw_people:
        files = sorted((data_dir / "lfw" / "deepfunneled_250" / person).glob("*.jpg"))[:2]
        assert files, person
        (root / person).mkdir(parents=True)
        for f in files:
            shutil.copy(f, root / person / f.name)
    return root


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (no pixel data worth the name)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


@pytest.fixture(scope="session")
def png_header():
    """``png_header(width, height)``: the bytes of a PNG whose header claims that size."""
    return _png_header
