"""Face alignment: a 150x150 chip with exactly the geometry of dlib's `get_face_chip`.

dlib's recognition network was trained on chips made by `get_face_chip(img, shape, size=150,
padding=0.25)` from the 5 points of its own landmark predictor (outer and inner eye corners, base
of the nose). We find faces with MTCNN, predict those same 5 points with dlib's predictor
(`forensics.models.dlib_landmarks`, started from the box dlib's detector would have drawn:
`dlib_box_from_mtcnn`), and cut the chip with dlib's geometry (`dlib_chip_transform`).

Until November 2026 the chip was cut from MTCNN's own landmarks mapped onto a template of where
they fall in dlib chips; dlib's points align better: LFW identification rank-1 rose from 87.6% to
91.0% (docs/architecture.md, "Alignment"; docs/benchmarks.md).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

CHIP_SIZE = 150
CHIP_PADDING = 0.25

#: Where get_face_chip puts dlib's 5 points (dlib/image_transforms/interpolation.h,
#: get_face_chip_details), in [0,1] chip units before padding.
DLIB_5PT_TEMPLATE = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ]
)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src→dst points.

    Umeyama (1991). Returns a 2x3 matrix M with dst ≈ M @ [x, y, 1].
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    var_s = (s0**2).sum() / len(src)
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    rot = u @ np.diag(d) @ vt
    scale = (sig * d).sum() / var_s
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def warp_to_chip(rgb: np.ndarray, m: np.ndarray, size: int = CHIP_SIZE) -> np.ndarray:
    """Warp an image with the image→chip similarity `m` into a size x size RGB chip (bilinear).

    When the face is much larger than the chip, the image is first reduced with an area filter
    (as dlib does with its image pyramid) so that the chip is not aliased.
    """
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    img = Image.fromarray(rgb)
    m = m.copy()
    if scale < 0.5:
        factor = int(np.floor(1.0 / scale))  # integer reduction keeps the geometry exact
        if factor >= 2:
            img = img.reduce(factor)
            # integer pixel centres: x_small = x/factor + 0.5/factor - 0.5
            pre = np.array([[1.0 / factor, 0, 0.5 / factor - 0.5], [0, 1.0 / factor, 0.5 / factor - 0.5], [0, 0, 1]])
            m = (np.vstack([m, [0, 0, 1]]) @ np.linalg.inv(pre))[:2]
    # PIL wants the inverse map (chip → image), in a pixel-centre-at-+0.5 convention; our
    # landmark coordinates have pixel centres at integers, hence the half-pixel shifts.
    full = np.vstack([m, [0, 0, 1]])
    inv = np.linalg.inv(full)
    shift = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1]])
    unshift = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    pil_inv = unshift @ inv @ shift
    coeffs = tuple(pil_inv[:2].reshape(-1))
    chip = img.transform((size, size), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR,
                         fillcolor=(0, 0, 0))
    return np.asarray(chip, dtype=np.uint8)


#: MTCNN box → the box dlib's 5-point landmark predictor was trained on (its HOG detector's):
#: centre offset (a*w + b*h, c*w + d*h) and side (e*w + f*h) from the MTCNN box's width w and
#: height h. Fitted by scripts/derive_landmark_box.py on LFW photos (numbers it printed).
MTCNN_TO_DLIB_BOX = (0.0197, -0.0345, -0.0472, 0.0747, 0.7390, 0.2872)


def dlib_box_from_mtcnn(box, coef=MTCNN_TO_DLIB_BOX) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) integer box for dlib's landmark predictor from an MTCNN box."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    w, h = x2 - x1, y2 - y1
    a, b, c, d, e, f = coef
    cx = (x1 + x2) / 2 + a * w + b * h
    cy = (y1 + y2) / 2 + c * w + d * h
    side = int(round(e * w + f * h))
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    return (left, top, left + side, top + side)


def dlib_chip_transform(points: np.ndarray, size: int = CHIP_SIZE, padding: float = CHIP_PADDING) -> np.ndarray:
    """The image→chip affine of dlib's `get_face_chip(img, shape, size, padding)` for its 5 points.

    dlib (get_face_chip_details, chip_details, extract_image_chip) fits a similarity from the
    padded template, in chip units, to the landmarks and samples chip pixel u at template
    coordinate u + 0.5. Checked against dlib-bin's get_face_chip: mean abs pixel difference 0.5
    (interpolation rounding), tests/forensics/models/test_dlib_landmarks.py.
    """
    chip_pts = (padding + DLIB_5PT_TEMPLATE) / (2 * padding + 1) * size
    chip_to_img = similarity_transform(chip_pts, np.asarray(points, dtype=np.float64))  # fitted this way round
    m = np.linalg.inv(np.vstack([chip_to_img, [0, 0, 1]]))[:2]
    m[:, 2] -= 0.5
    return m


def align_dlib(rgb: np.ndarray, points: np.ndarray, size: int = CHIP_SIZE) -> np.ndarray:
    """Aligned chip from dlib's 5 landmark points (eye corners, base of the nose)."""
    return warp_to_chip(rgb, dlib_chip_transform(points, size), size)
