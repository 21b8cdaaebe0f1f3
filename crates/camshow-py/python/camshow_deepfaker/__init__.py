"""Camshow Deepfaker for Python: the Rust face-swap engine over numpy arrays.

Images are ``H×W×3 uint8`` arrays, RGB by default (``color="bgr"`` for
OpenCV). The content-safety gate checks every input; every file written
carries AI-generated provenance. Use it only with the consent of every
person whose face you use, label what you publish as AI-generated, and
never to deceive, harass or impersonate (see ``USAGE_TERMS``).

>>> import camshow_deepfaker as cd                       # doctest: +SKIP
>>> engine = cd.Engine({"engine": {"selector": "many"}})  # doctest: +SKIP
>>> source = engine.prepare_source("me.jpg")              # doctest: +SKIP
>>> swapped = engine.swap(source, picture)                # doctest: +SKIP
"""

from __future__ import annotations

import os as _os
import sys as _sys

# ONNX Runtime is found as the CLI finds it; an `onnxruntime` package
# installed in this interpreter's environment counts.
_os.environ.setdefault("CAMSHOW_PYTHON", _sys.executable)

from ._native import (  # noqa: E402
    SOFTWARE,
    CamshowError,
    CancelledError,
    Engine,
    Face,
    FaceMap,
    InvalidInputError,
    LiveSession,
    ModelMissingError,
    NoFaceError,
    Source,
    UnsafeContentError,
    __version__,
    find_runtime,
    join_segments,
    read_image,
    sessions_created,
    write_image,
)

USAGE_TERMS = (
    "Use Camshow Deepfaker only with the consent of every person whose face you use, "
    "label what you publish as AI-generated, and never to deceive, harass or impersonate. "
    "Every output carries machine-readable AI provenance; nudity is refused."
)

__all__ = [
    "SOFTWARE",
    "USAGE_TERMS",
    "CamshowError",
    "CancelledError",
    "Engine",
    "Face",
    "FaceMap",
    "InvalidInputError",
    "LiveSession",
    "ModelMissingError",
    "NoFaceError",
    "Source",
    "UnsafeContentError",
    "__version__",
    "find_runtime",
    "join_segments",
    "read_image",
    "sessions_created",
    "write_image",
]
