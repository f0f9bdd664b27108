"""MTCNN (Zhang et al. 2016): facenet-pytorch's trained networks, run as one vectorised cascade.

facenet-pytorch's wheel ships the three trained networks (`data/pnet.pt`, `rnet.pt`, `onet.pt`).
This module loads them from that wheel *without importing facenet_pytorch*: its import pulls in
torchvision and, through it, torch._dynamo (about 3 s at every start of the CLI). It then runs
the same cascade as `facenet_pytorch.models.utils.detect_face` with the same numbers:

1. P-Net slides over an image pyramid (smallest face `min_face` px, scale step `factor`);
   candidate boxes, NMS 0.5 per scale and image, NMS 0.7 per image, box regression, squared.
2. R-Net scores 24x24 crops of those boxes; threshold, NMS 0.7, regression, squared.
3. O-Net scores 48x48 crops, regresses the box and gives the 5 landmarks; NMS 0.7 ("Min").

What differs is only how the work is done. facenet-pytorch crops and resizes every candidate box
in a Python loop (one `interpolate(mode="area")` call per box: over half of all detection time
on a CPU); here all boxes of a batch, and every level of the image pyramid, are cut and
area-resized at once from the images' summed-area tables, which give the same averages
`adaptive_avg_pool2d` (interpolate's "area" mode) computes. NMS is done in numpy, with
torchvision's rule for the first two stages and facenet's own "Min" procedure for the last.
`tests/forensics/models/test_mtcnn.py` checks boxes, scores and landmarks against `facenet_pytorch.MTCNN`.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

#: facenet-pytorch's defaults (MTCNN(thresholds=..., factor=...)).
DEFAULT_THRESHOLDS = (0.6, 0.7, 0.7)
DEFAULT_FACTOR = 0.709


def weights_dir() -> Path:
    """The `data/` folder of the installed facenet-pytorch wheel (found without importing it)."""
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "facenet-pytorch is not installed: it ships the MTCNN detector weights. Install it with "
            "`pip install --no-deps facenet-pytorch==2.6.0` (make setup does this)"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "data"


class PNet(nn.Module):
    """Proposal network: fully convolutional, face probability + box offsets per 12x12 cell."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x):
        x = self.prelu1(self.conv1(x))
        x = self.pool1(x)
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)


class RNet(nn.Module):
    """Refinement network on 24x24 crops."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)  # the flattening order the weights expect
        x = self.prelu4(self.dense4(x))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)


class ONet(nn.Module):
    """Output network on 48x48 crops: probability, box offsets and 5 landmarks."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)
        x = self.prelu5(self.dense5(x))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)


def _load(net: nn.Module, name: str) -> nn.Module:
    state = torch.load(weights_dir() / f"{name}.pt", map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    net.eval()
    # channels-last weights make PyTorch's CPU convolutions and pooling 2-3x faster here
    return net.to(memory_format=torch.channels_last)


@dataclass
class FaceBoxes:
    """MTCNN's result for one image: (n,4) boxes x1,y1,x2,y2, (n,) probabilities, (n,5,2) landmarks."""

    boxes: np.ndarray
    probs: np.ndarray
    points: np.ndarray


def batched_nms(boxes: np.ndarray, scores: np.ndarray, groups: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy NMS independently within each group (image, or image and scale); kept indices.

    torchvision.ops.batched_nms's rule: IoU with areas (x2-x1)*(y2-y1), a box is dropped when its
    IoU with a better-scored kept box of its group exceeds `threshold`. All groups at once (MTCNN
    runs hundreds of small groups per batch): the overlap of every pair within a group is computed
    in one go, then the greedy choice is resolved in rounds: a box is kept when every better box
    of its group that overlaps it is suppressed, and suppressed when a kept one overlaps it.
    """
    n = len(boxes)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((-scores, groups))  # by group, then by score, best first (stable)
    b, g = boxes[order], groups[order]  # in the boxes' own dtype (float32), as torchvision computes
    group_end = np.r_[np.flatnonzero(g[1:] != g[:-1]) + 1, n]
    end = np.repeat(group_end, np.diff(np.r_[0, group_end]))  # end of each box's group
    later = end - np.arange(n) - 1  # boxes after it in its group
    i = np.repeat(np.arange(n), later)
    j = i + 1 + np.arange(len(i)) - np.repeat(np.cumsum(later) - later, later)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    w = np.maximum(0.0, np.minimum(b[i, 2], b[j, 2]) - np.maximum(b[i, 0], b[j, 0]))
    h = np.maximum(0.0, np.minimum(b[i, 3], b[j, 3]) - np.maximum(b[i, 1], b[j, 1]))
    inter = w * h
    hit = inter / np.maximum(area[i] + area[j] - inter, 1e-12) > threshold
    i, j = i[hit], j[hit]  # i (better) would suppress j if i is kept
    kept = np.zeros(n, bool)
    suppressed = np.zeros(n, bool)
    while True:
        undecided = ~(kept | suppressed)
        if not undecided.any():
            break
        by_kept = np.zeros(n, bool)
        by_kept[j[kept[i]]] = True
        suppressed |= undecided & by_kept
        blocked = np.zeros(n, bool)
        blocked[j[~suppressed[i]]] = True  # a better box that is not (yet) suppressed overlaps it
        kept |= ~(kept | suppressed) & ~blocked
    keep = np.flatnonzero(kept)
    return order[keep]


def _facenet_min_nms(boxes: np.ndarray, scores: np.ndarray, groups: np.ndarray, threshold: float) -> np.ndarray:
    """The last stage's NMS exactly as facenet-pytorch runs it (`batched_nms_numpy`, "Min").

    O-Net probabilities often tie at float32's 1.0 - 1e-6; which of two tied boxes survives then
    depends on the order in which facenet's `np.argsort` visits them, so this keeps its exact
    procedure: all images at once via coordinate offsets, ascending argsort, best taken from the end.
    """
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    b = boxes + (groups.astype(boxes.dtype) * (boxes.max() + 1))[:, None]
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores)
    keep = []
    while order.size > 0:
        i = order[-1]
        keep.append(i)
        rest = order[:-1]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        overlap = w * h / np.minimum(area[i], area[rest])
        order = rest[overlap <= threshold]
    return np.asarray(keep, dtype=np.int64)


def _rerec(b: np.ndarray) -> np.ndarray:
    """Square boxes about their centres (side = the longer side)."""
    b = b.copy()
    h = b[:, 3] - b[:, 1]
    w = b[:, 2] - b[:, 0]
    side = np.maximum(w, h)
    b[:, 0] = b[:, 0] + w * 0.5 - side * 0.5
    b[:, 1] = b[:, 1] + h * 0.5 - side * 0.5
    b[:, 2] = b[:, 0] + side
    b[:, 3] = b[:, 1] + side
    return b


def _bbreg(b: np.ndarray, reg: np.ndarray) -> np.ndarray:
    b = b.copy()
    w = b[:, 2] - b[:, 0] + 1
    h = b[:, 3] - b[:, 1] + 1
    b[:, 0] += reg[:, 0] * w
    b[:, 1] += reg[:, 1] * h
    b[:, 2] += reg[:, 2] * w
    b[:, 3] += reg[:, 3] * h
    return b


def _crop_region(b: np.ndarray, w: int, h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Integer crop rectangles [y0, y1) x [x0, x1) of boxes clipped to the image (facenet's `pad`)."""
    t = np.trunc(b[:, :4]).astype(np.int64)
    x = np.maximum(t[:, 0], 1)
    y = np.maximum(t[:, 1], 1)
    ex = np.minimum(t[:, 2], w)
    ey = np.minimum(t[:, 3], h)
    return y - 1, ey, x - 1, ex


def summed_area_tables(images: np.ndarray) -> torch.Tensor:
    """(B, H+1, W+1, 3) summed-area tables of (B, H, W, 3) uint8 images, exact.

    float32 when every sum fits its 24-bit mantissa (255 * H * W < 2**24: images up to about
    256x256, such as LFW's and CUFS's), where PyTorch's float cumsum is 1.7x faster than numpy's
    integer one; int32 for larger images. Either way the sums, and so every area average cut from
    them, are the same integers.
    """
    b, h, w, c = images.shape
    if 255 * h * w < 2**24:
        sat = torch.zeros((b, h + 1, w + 1, c), dtype=torch.float32)
        inner = sat[:, 1:, 1:]
        torch.cumsum(torch.from_numpy(images).to(torch.float32), 1, out=inner)
        torch.cumsum(inner, 2, out=inner)
        return sat
    table = np.zeros((b, h + 1, w + 1, c), dtype=np.int32)
    inner = table[:, 1:, 1:]
    np.cumsum(images, axis=1, dtype=np.int32, out=inner)
    np.cumsum(inner, axis=2, out=inner)
    return torch.from_numpy(table)


def area_crops(sat: torch.Tensor, img_of, y0, y1, x0, x1, size: int | tuple[int, int]) -> torch.Tensor:
    """Crops [y0,y1)x[x0,x1) of images `img_of`, each resized to `size` (an int for a square, or
    (height, width)) by area averaging.

    `sat`: `summed_area_tables` of the images. Output cell i of a region of length R averages
    [floor(i R / n), ceil((i+1) R / n)) for an output length n, exactly as adaptive_avg_pool2d
    (interpolate's "area" mode) does. Returns (n, 3, height, width) float32 in channels-last memory.
    """
    _, hp, wp, c = sat.shape
    size_y, size_x = (size, size) if isinstance(size, int) else size

    def edges(a0, a1, n):
        i = torch.arange(n, dtype=torch.int64)
        a0 = torch.as_tensor(a0)[:, None]
        length = torch.as_tensor(a1)[:, None] - a0
        start = a0 + torch.div(i[None] * length, n, rounding_mode="floor")
        end = a0 + -torch.div(-(i[None] + 1) * length, n, rounding_mode="floor")
        return start, end

    ys, ye = edges(y0, y1, size_y)
    xs, xe = edges(x0, x1, size_x)
    base = torch.as_tensor(img_of, dtype=torch.int64)[:, None, None] * (hp * wp)
    flat = sat.reshape(-1, c)
    n = len(base)

    def corner(yy, xx):  # (n, size_y, size_x, c); index_select: half the time of flat[index]
        return flat.index_select(0, (base + yy[:, :, None] * wp + xx[:, None, :]).reshape(-1)).view(
            n, size_y, size_x, c)

    total = corner(ye, xe) - corner(ys, xe) - corner(ye, xs) + corner(ys, xs)
    area = ((ye - ys)[:, :, None] * (xe - xs)[:, None, :]).to(torch.float32)[..., None]
    return (total.to(torch.float32) / area).permute(0, 3, 1, 2)


class MTCNN:
    """Batched MTCNN on equal-sized RGB uint8 images: `detect(images, min_face)` → `FaceBoxes` each."""

    def __init__(self, thresholds=DEFAULT_THRESHOLDS, factor: float = DEFAULT_FACTOR):
        self.thresholds = tuple(thresholds)
        self.factor = factor
        self.pnet = _load(PNet(), "pnet")
        self.rnet = _load(RNet(), "rnet")
        self.onet = _load(ONet(), "onet")

    @torch.inference_mode()
    def detect(self, images: np.ndarray, min_face: int, thresholds=None) -> list[FaceBoxes]:
        """images: (B, H, W, 3) uint8. Faces smaller than `min_face` px are not searched for."""
        t1, t2, t3 = thresholds or self.thresholds
        images = np.require(images, np.uint8, ["C"])
        n_img = len(images)
        # one summed-area table per image gives every pyramid level and every crop (area resizing)
        sat = summed_area_tables(images)
        boxes, img_of = self._proposals(sat, min_face, t1)
        if boxes is None:
            return [_empty() for _ in range(n_img)]
        boxes, img_of = self._refine(sat, boxes, img_of, t2)
        boxes, img_of, points = self._output(sat, boxes, img_of, t3)
        return [FaceBoxes(boxes=boxes[img_of == i, :4], probs=boxes[img_of == i, 4], points=points[img_of == i])
                for i in range(n_img)]

    def _pyramid_scales(self, h: int, w: int, min_face: int) -> list[float]:
        """Image scales at which P-Net's 12 px window sees faces of `min_face` px and larger."""
        scales, m = [], 12.0 / min_face
        minl = min(h, w) * m
        while minl >= 12:
            scales.append(m)
            m *= self.factor
            minl *= self.factor
        return scales

    def _proposals(self, sat: torch.Tensor, min_face: int, threshold: float):
        """Stage 1, P-Net over the pyramid: squared candidate boxes (x1, y1, x2, y2, score) and their
        image index, after NMS per scale (0.5) and per image (0.7); (None, None) when there are none."""
        n_img, h, w = sat.shape[0], sat.shape[1] - 1, sat.shape[2] - 1
        whole = (np.arange(n_img), np.zeros(n_img, np.int64), np.full(n_img, h), np.zeros(n_img, np.int64),
                 np.full(n_img, w))
        cands = []
        for scale in self._pyramid_scales(h, w, min_face):
            level = area_crops(sat, *whole, (int(h * scale + 1), int(w * scale + 1)))
            reg, prob = self.pnet((level - 127.5) * 0.0078125)
            b = _candidate_boxes(reg.numpy(), prob[:, 1].numpy(), scale, threshold)
            if len(b):
                keep = batched_nms(b[:, :4], b[:, 4], b[:, 9].astype(np.int64), 0.5)
                cands.append(b[keep])
        if not cands:
            return None, None
        b = np.concatenate(cands)
        img_of = b[:, 9].astype(np.int64)
        keep = batched_nms(b[:, :4], b[:, 4], img_of, 0.7)
        b, img_of = b[keep], img_of[keep]
        bw, bh = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        boxes = np.stack([b[:, 0] + b[:, 5] * bw, b[:, 1] + b[:, 6] * bh,
                          b[:, 2] + b[:, 7] * bw, b[:, 3] + b[:, 8] * bh, b[:, 4]], axis=1)
        return _rerec(boxes), img_of

    def _refine(self, sat: torch.Tensor, boxes: np.ndarray, img_of: np.ndarray, threshold: float):
        """Stage 2, R-Net on 24x24 crops: threshold, NMS 0.7, box regression, squared."""
        crops, boxes, img_of = self._crops(sat, boxes, img_of, 24)
        if not len(boxes):
            return boxes, img_of
        reg, prob = _chunked(self.rnet, crops)
        score = prob[:, 1].numpy()
        ok = score > threshold
        boxes = np.concatenate([boxes[ok, :4], score[ok, None]], axis=1)
        img_of, reg = img_of[ok], reg.numpy()[ok]
        keep = batched_nms(boxes[:, :4], boxes[:, 4], img_of, 0.7)
        boxes, img_of, reg = boxes[keep], img_of[keep], reg[keep]
        return _rerec(_bbreg(boxes, reg)), img_of

    def _output(self, sat: torch.Tensor, boxes: np.ndarray, img_of: np.ndarray, threshold: float):
        """Stage 3, O-Net on 48x48 crops: threshold, the 5 landmarks, box regression, NMS 0.7 ("Min")."""
        crops, boxes, img_of = self._crops(sat, boxes, img_of, 48)
        if not len(boxes):
            return boxes, img_of, np.zeros((0, 5, 2))
        reg, lms, prob = _chunked(self.onet, crops)
        score = prob[:, 1].numpy()
        ok = score > threshold
        boxes = np.concatenate([boxes[ok, :4], score[ok, None]], axis=1)
        img_of, reg, lms = img_of[ok], reg.numpy()[ok], lms.numpy()[ok]
        bw = boxes[:, 2] - boxes[:, 0] + 1
        bh = boxes[:, 3] - boxes[:, 1] + 1
        px = bw[:, None] * lms[:, :5] + boxes[:, 0:1] - 1
        py = bh[:, None] * lms[:, 5:] + boxes[:, 1:2] - 1
        points = np.stack([px, py], axis=2)
        boxes = _bbreg(boxes, reg)
        keep = _facenet_min_nms(boxes[:, :4], boxes[:, 4], img_of, 0.7)
        return boxes[keep], img_of[keep], points[keep]

    @staticmethod
    def _crops(sat: torch.Tensor, boxes: np.ndarray, img_of: np.ndarray, size: int):
        """Normalised size x size crops of all boxes (channels-last), dropping empty ones."""
        h, w = sat.shape[1] - 1, sat.shape[2] - 1
        y0, y1, x0, x1 = _crop_region(boxes, w, h)
        valid = (y1 > y0) & (x1 > x0)
        boxes, img_of, y0, y1, x0, x1 = boxes[valid], img_of[valid], y0[valid], y1[valid], x0[valid], x1[valid]
        if len(boxes) == 0:
            return None, boxes, img_of
        crops = area_crops(sat, img_of, y0, y1, x0, x1, size)
        crops = ((crops - 127.5) * 0.0078125).contiguous(memory_format=torch.channels_last)
        return crops, boxes, img_of


#: R-Net and O-Net see their crops this many at a time: the activations of a chunk stay in the
#: CPU's caches (O-Net over 270 crops: 335 ms at once, 229 ms in chunks of 64, on one thread).
CROP_CHUNK = 64


def _chunked(net: nn.Module, crops: torch.Tensor) -> tuple[torch.Tensor, ...]:
    outs = [net(crops[i:i + CROP_CHUNK]) for i in range(0, len(crops), CROP_CHUNK)]
    return tuple(torch.cat(parts) for parts in zip(*outs))


def _candidate_boxes(reg: np.ndarray, prob: np.ndarray, scale: float, threshold: float) -> np.ndarray:
    """P-Net cells over threshold → rows (x1, y1, x2, y2, score, 4 offsets, image index)."""
    img, iy, ix = np.nonzero(prob >= threshold)
    if len(img) == 0:
        return np.zeros((0, 10), dtype=np.float32)
    # box arithmetic in float32 throughout, as facenet-pytorch does: crops are cut at truncated
    # coordinates, and float64 would move an edge by a pixel now and then
    stride, cell = 2, 12
    xx, yy = ix.astype(np.float32), iy.astype(np.float32)
    x1 = np.floor((stride * xx + 1) / scale)
    y1 = np.floor((stride * yy + 1) / scale)
    x2 = np.floor((stride * xx + cell) / scale)
    y2 = np.floor((stride * yy + cell) / scale)
    offsets = reg[img, :, iy, ix]
    return np.column_stack([x1, y1, x2, y2, prob[img, iy, ix], offsets, img]).astype(np.float32)


def _empty() -> FaceBoxes:
    return FaceBoxes(boxes=np.zeros((0, 4)), probs=np.zeros(0), points=np.zeros((0, 5, 2)))
