"""Face alignment: warp a face to a 150x150 chip with the geometry of dlib's `get_face_chip`.

dlib's recognition network was trained on chips made by `get_face_chip(img, shape, size=150,
padding=0.25)` from its own 5-point landmarks (eye corners and the base of the nose). We detect
faces with MTCNN, whose 5 landmarks are different points (eye centres, nose tip, mouth corners).
So we use a template of where MTCNN's landmarks fall *inside dlib-made chips*: it was derived by
`scripts/derive_mtcnn_template.py`, which makes dlib chips of LFW photos with dlib-bin's own
pipeline (HOG detector, 5-point predictor, get_face_chip 150/0.25), runs MTCNN on those chips and
averages the landmark positions (see docs/architecture.md, "Alignment"). A least-squares
similarity transform from a face's MTCNN landmarks to this template then reproduces dlib's chip
geometry.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

CHIP_SIZE = 150
CHIP_PADDING = 0.25

#: dlib's own 5-point template (dlib/image_transforms/interpolation.h, get_face_chip_details),
#: in [0,1] chip units before padding; kept for reference and for the derivation script.
DLIB_5PT_TEMPLATE = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ]
)

#: Where MTCNN's landmarks (left eye, right eye, nose, left mouth, right mouth, in image order)
#: fall in a 150x150 dlib chip made with padding 0.25. Derived by scripts/derive_mtcnn_template.py
#: (numbers written by that script; see its docstring for the data it used).
MTCNN_TEMPLATE_150 = np.array(
    [
        [43.9554, 35.6966],
        [102.0487, 35.9754],
        [72.9801, 72.3120],
        [46.8073, 101.9615],
        [98.5115, 102.3052],
    ],
    dtype=np.float64,
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


def chip_transform(landmarks: np.ndarray, size: int = CHIP_SIZE, template: np.ndarray | None = None) -> np.ndarray:
    """The image→chip similarity for one face's 5 MTCNN landmarks."""
    template = MTCNN_TEMPLATE_150 if template is None else template
    return similarity_transform(landmarks, template * (size / CHIP_SIZE))


def align_face(rgb: np.ndarray, landmarks: np.ndarray, size: int = CHIP_SIZE) -> np.ndarray:
    """Aligned size x size RGB chip of the face whose MTCNN landmarks are given."""
    return warp_to_chip(rgb, chip_transform(landmarks, size), size)
