"""The PyTorch port of dlib's face-recognition ResNet against dlib itself (dlib-bin)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forensics.models.dlib_resnet import (
    WEIGHTS_NAME,
    DlibResNet,
    embed_chips,
    load_dlib_resnet,
    parse_dlib_resnet,
)
from forensics.models.weight_files import dlib_resnet_weights_path, shape_predictor_weights_path

# One photo each of 29 different LFW people (deep-funneled, 250x250).
LFW_PEOPLE = [
    "Aaron_Pena", "Almeida_Baptista", "Ashraf_Alasmar", "Bob_Hope", "Carol_Niedermayer",
    "Cindy_Zagorski", "David_Ballantyne", "Donatella_Versace", "Eric_Robert_Rudolph",
    "Gary_Bald", "Guus_Hiddink", "Ibrahim_Rugova", "Janica_Kostelic", "Jim_Talent",
    "Jonathan_Byrd", "Katrin_Cartlidge", "Laura_Hernandez", "Luther_Htu", "Martin_Cauchon",
    "Micheal_Jourdain_Jr", "Nancy_Sinatra", "Patrice_Chereau", "Pierre_Lacroix",
    "Richard_Myers", "Ronde_Barber", "Shawn_Marion", "Suzanne_Somers", "Tom_Cruise",
    "Wendell_Bryant",
]
LFW_FILES = [f"lfw/deepfunneled_250/{n}/{n}_0001.jpg" for n in LFW_PEOPLE]
# A CUFS photo and its sketch from each of the three parts.
CUFS_FILES = [
    f"cufs/{part}/{kind}/cufs_{part}_test_{n}.jpg"
    for part, n in [("cuhk_student", "001"), ("ar", "101"), ("xm2vts", "144")]
    for kind in ("photos", "sketches")
]


@pytest.fixture(scope="module")
def model() -> DlibResNet:
    torch.manual_seed(0)
    return load_dlib_resnet()


@pytest.fixture(scope="module")
def dlib_mod(data_dir):
    return pytest.importorskip("dlib", reason="dlib (the dlib-bin wheel) is needed as the reference")


@pytest.fixture(scope="module")
def chips(dlib_mod, data_dir) -> np.ndarray:
    """150x150 RGB chips cut by dlib itself (detector + 5-point predictor + get_face_chip)."""
    from PIL import Image

    detector = dlib_mod.get_frontal_face_detector()
    predictor = dlib_mod.shape_predictor(str(shape_predictor_weights_path()))
    out = []
    for rel in LFW_FILES + CUFS_FILES:
        path = data_dir / rel
        if not path.is_file():
            continue
        img = np.asarray(Image.open(path).convert("RGB"))
        dets = detector(img, 0)
        if not dets:
            continue
        box = max(dets, key=lambda r: r.area())
        out.append(dlib_mod.get_face_chip(img, predictor(img, box), size=150, padding=0.25))
    if len(out) < 24:
        pytest.skip(f"only {len(out)} face chips could be made from {data_dir} (need 24)")
    return np.stack(out)


def test_parse_structure():
    net = parse_dlib_resnet()
    assert net.input_size == (150, 150)
    np.testing.assert_allclose(net.input_mean, [122.782, 117.001, 104.298], atol=1e-4)
    assert len(net.convs) == 29
    assert net.convs[0].weight.shape == (32, 3, 7, 7) and net.convs[0].padding == 0
    assert net.fc_weight.shape == (128, 256)
    assert abs(net.distance_threshold - 0.6) < 1e-6
    assert net.layer_names.count("add_prev_") == 14
    assert sum(c.weight.size + c.bias.size + 2 * c.gamma.size for c in net.convs) + net.fc_weight.size > 5.5e6


@pytest.mark.slow
def test_matches_dlib(model, chips, dlib_mod):
    ref_net = dlib_mod.face_recognition_model_v1(str(dlib_resnet_weights_path()))
    ref = np.array([np.asarray(ref_net.compute_face_descriptor(c)) for c in chips], dtype=np.float64)
    got = embed_chips(model, chips, batch_size=16)
    assert got.dtype == np.float32 and got.shape == (len(chips), 128)
    diff = np.abs(got - ref).max()
    assert diff <= 1e-5, f"max abs difference to dlib {diff:.3g}"
    # the batched forward does not depend on batch composition
    np.testing.assert_allclose(embed_chips(model, chips[:5], batch_size=2), got[:5], atol=1e-6)


def test_weights_metadata(model):
    assert model.weights_path == dlib_resnet_weights_path()
    assert model.weights_path.name == WEIGHTS_NAME + ".dat"
    assert len(model.weights_sha256) == 64
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())


def test_bad_files_raise(tmp_path):
    data = dlib_resnet_weights_path().read_bytes()

    truncated = tmp_path / "truncated.dat"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated.dat.*end of file"):
        parse_dlib_resnet(truncated)

    # a con_4 layer name replaced by another of the same length
    i = data.index(b"con_4")
    tampered = tmp_path / "tampered.dat"
    tampered.write_bytes(data[:i] + b"xyz_4" + data[i + 5 :])
    with pytest.raises(ValueError, match="tampered.dat.*'con_4'"):
        parse_dlib_resnet(tampered)

    trailing = tmp_path / "trailing.dat"
    trailing.write_bytes(data + b"\x00")
    with pytest.raises(ValueError, match="trailing bytes"):
        parse_dlib_resnet(trailing)

    other = tmp_path / "other.dat"
    other.write_bytes(b"\x01\x01\x01\x13loss_multiclass_log")  # another dlib network
    with pytest.raises(ValueError, match="other.dat.*'loss_metric_2'.*'loss_multiclass_log'"):
        load_dlib_resnet(other)


def test_differentiable(model):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(2, 3, 150, 150, generator=g) * 255).requires_grad_(True)
    desc, feats = model.forward_features(x)
    assert desc.shape == (2, 128)
    assert [tuple(f.shape[1:]) for f in feats] == [(32, 35, 35), (64, 17, 17), (128, 8, 8), (256, 4, 4)]
    torch.testing.assert_close(desc, model(x))
    (desc.square().sum() + sum(f.mean() for f in feats)).backward()
    assert x.grad is not None
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_input_validation(model):
    with pytest.raises(ValueError):
        model(torch.zeros(1, 3, 112, 112))
    with pytest.raises(ValueError):
        embed_chips(model, np.zeros((1, 150, 150, 3), np.float32))
