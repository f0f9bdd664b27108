"""Round-trip gallery vectors on real chips: what the recipe says, batch by batch, and a space id
that names the recipe (vectors of an earlier recipe are rebuilt, never mixed)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from PIL import Image

from forensics.fusion import unit_rows
from forensics.inversion.invert import invert_chips, load_inverter
from forensics.inversion.sketchify import sketchify
from forensics.roundtrip import ROUNDTRIP_RECIPE, roundtrip_space_id, roundtrip_vectors
from forensics.whitening import load_whitening


def one_by_one(embedder, inverter, chips, whitening):
    """Each chip on its own: its canonical pencil sketch at 100x100 px, inverted, back to 150 px,
    embedded, whitened, unit length."""
    out = []
    for c in chips:
        small = np.asarray(Image.fromarray(sketchify(c, "pencil", randomize=False)).resize((100, 100),
                                                                                          Image.BILINEAR))
        photo = np.array(Image.fromarray(invert_chips(inverter, small[None])[0]).resize((150, 150),
                                                                                         Image.BILINEAR))
        out.append(unit_rows(whitening.apply(embedder.embed(photo[None])))[0])
    return np.stack(out)


def test_roundtrip_vectors_follow_the_recipe_on_real_chips(pipeline, data_dir):
    from forensics.datasets import read_manifest

    cufs = [r for r in read_manifest(data_dir, "cufs") if r["kind"] == "photo" and r["split"] == "test"][:3]
    lfw = read_manifest(data_dir, "lfw")[:2]
    chips = np.stack([pipeline.process_one(r["path"], kind="photo").chip for r in cufs + lfw])
    inverter = load_inverter()
    white = load_whitening(pipeline.embedder.info.key.slug)
    got = roundtrip_vectors(pipeline.embedder, inverter, chips, white, batch_size=3)  # two batches
    want = one_by_one(pipeline.embedder, inverter, chips, white)
    assert got.shape == (5, 128) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert np.abs(got - want).max() < 1e-4


def test_the_space_id_names_the_recipe_the_inverter_and_the_search_space():
    inverter = SimpleNamespace(info=SimpleNamespace(sha256="abc"))
    assert ROUNDTRIP_RECIPE == "pencil@100"
    assert roundtrip_space_id(inverter, None) == "roundtrip:pencil@100:abc:raw"
    assert roundtrip_space_id(inverter, SimpleNamespace(space_id="w1")) == "roundtrip:pencil@100:abc:w1"
