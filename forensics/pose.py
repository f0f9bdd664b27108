"""Head pose of a face, from the landmarks its alignment already needs: a signed yaw index.

The pipeline marks dlib's 5 alignment points on every face (`forensics.detect`: outer and inner
corner of each eye, base of the nose). In a frontal face the base of the nose lies below the
midpoint of the two eyes; as the head turns left or right it moves sideways, towards the side the
face turns to. The yaw index is that sideways offset, measured along the line through the two eye
centres (so a tilted head reads the same) and divided by the distance between the eye centres (so
the size of the face does not matter): 0 for a frontal face, positive when the nose lies right of
the eyes' midpoint in the image, negative when left; a mirrored image gives the opposite sign.

A face is `turned` (far from frontal) when the size of its index is at least `TURNED_THRESHOLD`,
chosen on FS2K training sketches annotated frontal or three-quarter view (research/pose/).
No model of its own: the estimate costs a few arithmetic operations on points already computed.

A degenerate landmark set (the two eye centres at one point, or a point that is not a finite
number) has no yaw index: its pose is `unknown`, stated as such in the query output and the
report, never guessed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping, Optional

import numpy as np

#: |yaw index| at or above which a face is taken as turned from frontal: the threshold of highest
#: balanced accuracy on the FS2K training sketches (research/pose/README.md;
#: research/pose/pose-threshold-2026-12-02.json).
TURNED_THRESHOLD = 0.098

#: Where the rule was chosen, and where identification of turned and frontal sketches is compared:
#: cited by the console warning and the report.
POSE_STUDY = "research/pose/"
POSE_BENCHMARK_SECTION = 'docs/benchmarks.md, "Sketch identification by pose"'
#: why a pose is unknown, as the query's warning and the report say it (after "degenerate")
UNKNOWN_POSE_REASON = ("(its two eye centres coincide, or a landmark is not a finite number), so whether it is "
                       "frontal or turned could not be estimated")

#: dlib's 5 points, in the predictor's order (`forensics.align.DLIB_5PT_TEMPLATE`): the eye on the
#: image's right (outer, inner corner), the eye on the image's left (outer, inner), base of the nose.
_RIGHT_EYE = (0, 1)
_LEFT_EYE = (2, 3)
_NOSE = 4


@dataclass(frozen=True)
class PoseEstimate:
    """A face's yaw index, whether it counts as turned, and the threshold that decided it; or,
    for degenerate landmarks, an unknown pose (`yaw_index` and `turned` None: `known` is False)."""

    yaw_index: Optional[float]
    turned: Optional[bool]
    threshold: float

    @property
    def known(self) -> bool:
        return self.yaw_index is not None

    @property
    def label(self) -> str:
        """"frontal", "turned from frontal" or "unknown" (degenerate landmarks)."""
        return "unknown" if not self.known else "turned from frontal" if self.turned else "frontal"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> Optional["PoseEstimate"]:
        """The stored form back; None where none was stored (faces recorded before poses were)."""
        if not isinstance(d, Mapping) or not isinstance(d.get("threshold"), (int, float)):
            return None
        if "yaw_index" not in d or "turned" not in d:
            return None
        index, turned = d["yaw_index"], d["turned"]
        if index is None and turned is None:
            return cls(None, None, float(d["threshold"]))
        if not isinstance(turned, bool) or not isinstance(index, (int, float)) or isinstance(index, bool):
            return None
        return cls(float(index), turned, float(d["threshold"]))


def yaw_index(points) -> Optional[float]:
    """The signed yaw index of dlib's 5 alignment points ((5, 2) image pixels, see module doc);
    None for a degenerate set (a point not finite, or the two eye centres at one point).

    Raises ValueError for anything but 5 points of 2 coordinates (a caller's mistake)."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape != (5, 2):
        raise ValueError(f"need dlib's 5 landmark points as (5, 2) numbers, got shape {pts.shape}")
    if not np.isfinite(pts).all():
        return None
    left, right = pts[list(_LEFT_EYE)].mean(0), pts[list(_RIGHT_EYE)].mean(0)
    axis = right - left
    interocular = float(np.hypot(*axis))
    if interocular <= 0:
        return None
    offset = pts[_NOSE] - (left + right) / 2
    return float(offset @ axis) / interocular**2


def estimate_pose(points, threshold: float = TURNED_THRESHOLD) -> PoseEstimate:
    """The `PoseEstimate` of a face from its 5 alignment points (unknown for a degenerate set)."""
    index = yaw_index(points)
    if index is None:
        return PoseEstimate(yaw_index=None, turned=None, threshold=threshold)
    index = round(index, 4)
    return PoseEstimate(yaw_index=index, turned=abs(index) >= threshold, threshold=threshold)


__all__ = ["POSE_BENCHMARK_SECTION", "POSE_STUDY", "PoseEstimate", "TURNED_THRESHOLD", "UNKNOWN_POSE_REASON",
           "estimate_pose", "yaw_index"]
