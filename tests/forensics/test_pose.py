"""The pose estimate (forensics.pose): the yaw index on synthetic landmarks, and on real sketches
through the face pipeline (every face record carries its pose)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from forensics.pose import TURNED_THRESHOLD, PoseEstimate, estimate_pose, yaw_index

#: a frontal face's 5 points in pixels, in the order of dlib's predictor (forensics.align.DLIB_5PT_TEMPLATE):
#: image-right eye outer and inner corner, image-left eye outer and inner corner, base of the nose.
#: Eye centres at x = 70 and 30 (40 px apart), the nose below their midpoint.
FRONTAL = np.array([[80.0, 40.0], [60.0, 41.0], [20.0, 40.0], [40.0, 41.0], [50.0, 75.0]])
INTEROCULAR = 40.0


def turned_by(dx: float) -> np.ndarray:
    """The frontal points with the base of the nose moved dx pixels to the right."""
    pts = FRONTAL.copy()
    pts[4, 0] += dx
    return pts


def rotated(pts: np.ndarray, degrees: float, scale: float = 1.0, shift=(0.0, 0.0)) -> np.ndarray:
    a = np.radians(degrees)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return pts @ rot.T * scale + np.asarray(shift)


def test_the_index_is_the_nose_offset_over_the_eye_distance():
    assert yaw_index(FRONTAL) == 0
    assert yaw_index(turned_by(15)) == pytest.approx(15 / INTEROCULAR)
    assert yaw_index(turned_by(-6)) == pytest.approx(-6 / INTEROCULAR)


def test_the_index_ignores_tilt_size_and_position():
    pts = turned_by(12)
    moved = rotated(pts, 25, scale=3.5, shift=(400, -80))
    assert yaw_index(moved) == pytest.approx(yaw_index(pts), abs=1e-12)
    assert yaw_index(pts) > 0.2


def test_a_mirror_image_flips_the_sign():
    pts = turned_by(20)
    mirrored = pts.copy()
    mirrored[:, 0] = 100 - mirrored[:, 0]
    mirrored = mirrored[[2, 3, 0, 1, 4]]  # the predictor's order: image-right eye first
    assert yaw_index(mirrored) == pytest.approx(-yaw_index(pts), abs=1e-12)


def test_turned_by_the_threshold_either_way():
    assert TURNED_THRESHOLD > 0
    assert not estimate_pose(FRONTAL).turned
    for sign in (1, -1):
        pose = estimate_pose(turned_by(sign * 30))
        assert pose.turned and np.sign(pose.yaw_index) == sign and pose.threshold == TURNED_THRESHOLD
    assert estimate_pose(turned_by(30), threshold=1.0).turned is False


def test_points_of_the_wrong_shape_are_refused():
    for bad in (FRONTAL[:4], np.zeros((5, 3)), np.zeros(10)):
        with pytest.raises(ValueError, match=r"\(5, 2\)"):
            yaw_index(bad)


def test_degenerate_landmarks_give_an_unknown_pose_not_an_error():
    """Both eye centres on one point (all points at one pixel, or each eye's corners mirrored
    about the other's), or a point that is not a number: no yaw index, the pose stated unknown."""
    same_centre = FRONTAL.copy()
    same_centre[[2, 3]] = same_centre[[1, 0]]  # the image-left eye's corners where the right eye's are
    nan_nose = FRONTAL.copy()
    nan_nose[4] = np.nan
    for bad in (np.zeros((5, 2)), np.full((5, 2), 37.5), same_centre, nan_nose, np.full((5, 2), np.inf)):
        assert yaw_index(bad) is None
        pose = estimate_pose(bad)
        assert not pose.known and pose.yaw_index is None and pose.turned is None and pose.label == "unknown"
        assert pose.threshold == TURNED_THRESHOLD
        assert PoseEstimate.from_dict(pose.to_dict()) == pose  # stored and read back as unknown
    assert estimate_pose(FRONTAL).known and estimate_pose(FRONTAL).label == "frontal"
    assert estimate_pose(turned_by(30)).label == "turned from frontal"


def test_the_stored_form_round_trips_and_nothing_is_made_up():
    pose = estimate_pose(turned_by(30))
    assert PoseEstimate.from_dict(pose.to_dict()) == pose
    for missing in (None, {}, {"yaw_index": 0.3, "threshold": 0.1}, {"yaw_index": "x", "turned": True,
                                                                       "threshold": 0.1},
                    {"yaw_index": None, "turned": True, "threshold": 0.1}, {"yaw_index": None, "turned": None},
                    {"yaw_index": True, "turned": True, "threshold": 0.1}):
        assert PoseEstimate.from_dict(missing) is None


# -------------------------------------------------------------------------------- real sketches

#: a three-quarter view annotated turned in FS2K (anno_train.json: frontal_face 1), nose to the
#: image's right; yaw index 0.63 in research/pose/pose-threshold-2026-12-02.json
TURNED_SKETCH = "fs2k/sketches/fs2k_p3_0014.jpg"
#: a CUFS test sketch (all frontal)
FRONTAL_SKETCH = "cufs/ar/sketches/cufs_ar_test_101.jpg"


def test_a_cufs_sketch_is_frontal(pipeline, data_dir):
    pose = pipeline.process_one(data_dir / FRONTAL_SKETCH, kind="sketch").pose
    assert not pose.turned and abs(pose.yaw_index) < TURNED_THRESHOLD / 2


def test_a_three_quarter_sketch_is_turned_and_its_mirror_the_other_way(pipeline, data_dir, tmp_path):
    path = data_dir / TURNED_SKETCH
    pose = pipeline.process_one(path, kind="sketch").pose
    assert pose.turned and pose.yaw_index > 2 * TURNED_THRESHOLD
    mirror = tmp_path / "mirror.png"
    Image.open(path).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(mirror)
    flipped = pipeline.process_one(mirror, kind="sketch").pose
    assert flipped.turned and flipped.yaw_index < -2 * TURNED_THRESHOLD
