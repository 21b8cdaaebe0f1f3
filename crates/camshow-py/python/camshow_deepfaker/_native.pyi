"""Type stubs of the native module (the Rust engine)."""

from __future__ import annotations

import os
from pathlib import Path
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, Literal, TypedDict

import numpy as np
import numpy.typing as npt

__version__: str
SOFTWARE: str

Image = npt.NDArray[np.uint8]
StrPath = str | os.PathLike[str]
Color = Literal["rgb", "bgr"]

class CamshowError(Exception): ...
class UnsafeContentError(CamshowError): ...
class NoFaceError(CamshowError): ...
class CancelledError(CamshowError): ...
class InvalidInputError(CamshowError): ...

class ModelMissingError(CamshowError):
    install_command: str
    model: str

class RuntimeInfo(TypedDict):
    path: Path
    found_by: str

class EngineRuntime(TypedDict):
    path: Path
    found_by: str
    version: str

class Face:
    @property
    def bbox(self) -> npt.NDArray[np.float32]: ...
    @property
    def score(self) -> float: ...
    @property
    def kps(self) -> npt.NDArray[np.float32]: ...
    @property
    def landmarks(self) -> npt.NDArray[np.float32] | None: ...
    @property
    def embedding(self) -> npt.NDArray[np.float32] | None: ...

class Source:
    @property
    def photos(self) -> int: ...
    @property
    def swapper(self) -> str: ...
    @property
    def embedding(self) -> npt.NDArray[np.float32] | None: ...

class FaceMap:
    @property
    def path(self) -> Path: ...
    @property
    def people(self) -> list[dict[str, Any]]: ...
    @property
    def faces(self) -> int: ...
    @property
    def frames(self) -> int: ...
    def __len__(self) -> int: ...

class LiveSession:
    def __iter__(self) -> Iterator[Image]: ...
    def __next__(self) -> Image: ...
    def stop(self) -> None: ...
    def set_mirror(self, on: bool) -> None: ...
    def set_source(self, source: Source) -> None: ...
    @property
    def stats(self) -> dict[str, Any] | None: ...
    def __enter__(self) -> LiveSession: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

class Engine:
    def __init__(
        self,
        settings: Mapping[str, Any] | StrPath | None = None,
        models_dir: StrPath | None = None,
        model_files: Mapping[str, StrPath] | None = None,
    ) -> None: ...
    @property
    def settings(self) -> dict[str, Any]: ...
    @property
    def runtime(self) -> EngineRuntime: ...
    @property
    def swapper(self) -> str: ...
    @property
    def processors(self) -> list[str]: ...
    def reconfigure(self, patch: Mapping[str, Any]) -> None: ...
    def detect(self, image: Image, *, color: Color = "rgb") -> list[Face]: ...
    def prepare_source(
        self,
        photos: Image | StrPath | list[Image] | list[StrPath],
        *,
        color: Color = "rgb",
    ) -> Source: ...
    def swap(
        self,
        source: Source,
        image: Image,
        *,
        color: Color = "rgb",
        selector: Literal["one", "many", "reference"] | None = None,
        reference: Image | None = None,
    ) -> Image: ...
    def process_frame(
        self, source: Source, frame: Image, *, color: Color = "rgb", fps: float = 30.0
    ) -> Image: ...
    def reset_stream(self) -> None: ...
    def swap_video(
        self,
        source: Source,
        target: StrPath,
        output: StrPath,
        *,
        progress: Callable[[int, int | None], bool | None] | None = None,
        segment: tuple[int, int] | None = None,
    ) -> dict[str, Any]: ...
    def scan_faces(
        self, target: StrPath, output: StrPath | None = None, *, cluster_distance: float | None = None
    ) -> FaceMap: ...
    def live_session(
        self,
        source: Source,
        camera: str,
        *,
        size: tuple[int, int] | None = None,
        fps: float | None = None,
        mirror: bool = False,
        max_frames: int | None = None,
        duration: float | None = None,
        color: Color = "rgb",
        loop_file: bool = False,
    ) -> LiveSession: ...

def join_segments(
    segments: list[StrPath], target: StrPath, output: StrPath, *, keep_audio: bool = True
) -> dict[str, Any]: ...
def find_runtime() -> RuntimeInfo: ...
def sessions_created() -> int: ...
def read_image(path: StrPath, *, color: Color = "rgb") -> Image: ...
def write_image(path: StrPath, image: Image, *, color: Color = "rgb", swapped: bool = True) -> None: ...
