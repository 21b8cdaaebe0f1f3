"""Shared helpers: the sample photos, FFmpeg for pixels in and out, the CLI.

The suite runs against the built wheel installed in a fresh virtual
environment (scripts/test-python.sh); settings come from the defaults only
(CAMSHOW_CONFIG points at a file that does not exist).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

_ISOLATED = tempfile.mkdtemp(prefix="camshow-pytest-")
os.environ["CAMSHOW_CONFIG"] = os.path.join(_ISOLATED, "no-settings.toml")


def cache_dir() -> Path:
    if os.environ.get("CAMSHOW_CACHE"):
        return Path(os.environ["CAMSHOW_CACHE"])
    if sys.platform == "darwin":
        return Path.home() / "Library/Caches/camshow-deepfaker"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "camshow-deepfaker"


def sample(name: str) -> Path:
    p = cache_dir() / "samples" / name
    assert p.is_file(), f"sample {p} is missing: run scripts/setup.sh"
    return p


def camshow_bin() -> Path:
    p = Path(os.environ.get("PYTEST_CAMSHOW_BIN", Path(__file__).parents[3] / "target/debug/camshow"))
    assert p.is_file(), f"the camshow binary {p} is missing: cargo build -p camshow-cli"
    return p


def run(args: list, text: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run([str(a) for a in args], capture_output=True, text=text)
    assert out.returncode == 0, f"{args}: {out.stderr!r}"
    return out


def ffprobe(path: Path) -> dict:
    return json.loads(
        run(
            ["ffprobe", "-v", "error", "-count_frames", "-print_format", "json", "-show_streams", "-show_format", path]
        ).stdout
    )


def read_rgb(path: Path) -> np.ndarray:
    """A picture (or a video's first frame) as H×W×3 uint8 RGB, decoded by FFmpeg."""
    v = next(s for s in ffprobe(path)["streams"] if s["codec_type"] == "video")
    raw = run(["ffmpeg", "-v", "error", "-i", path, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], text=False)
    return np.frombuffer(raw.stdout, np.uint8).reshape(v["height"], v["width"], 3).copy()


def frames_of(path: Path) -> np.ndarray:
    """Every frame of a video, N×H×W×3."""
    v = next(s for s in ffprobe(path)["streams"] if s["codec_type"] == "video")
    raw = run(["ffmpeg", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], text=False).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, v["height"], v["width"], 3)


def write_png(a: np.ndarray, path: Path) -> Path:
    h, w, _ = a.shape
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-i", "-", str(path)],
        input=np.ascontiguousarray(a).tobytes(),
        check=True,
    )
    return path


def exiftool(tag: str, path: Path) -> str:
    return run(["exiftool", "-s3", f"-{tag}", path]).stdout.strip()


def marked(a: np.ndarray, rect: tuple[int, int, int, int]) -> np.ndarray:
    """A copy with the gate's test marker (the test build's stand-in for unsafe content) over rect."""
    pink, lime = (255, 0, 128), (128, 255, 0)
    out = a.copy()
    x0, y0, w, h = rect
    for y in range(y0, min(y0 + h, a.shape[0])):
        for x in range(x0, min(x0 + w, a.shape[1])):
            out[y, x] = pink if ((x - x0) // 8 + (y - y0) // 8) % 2 == 0 else lime
    return out


def astronaut_clip(dir: Path, name: str, seconds: float = 2.0, audio: bool = True, extra: list[str] | None = None) -> Path:
    """A pan over the astronaut at 10 fps, with a tone."""
    out = dir / name
    args: list[str | os.PathLike[str]] = ["ffmpeg", "-v", "error", "-y", "-loop", "1", "-framerate", "10", "-i", sample("astronaut.png")]
    if audio:
        args += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]
    args += ["-t", str(seconds), "-vf", "crop=448:448:'32+20*sin(t)':'32+10*t',format=yuv420p", "-c:v", "libx264"]
    if audio:
        args += ["-c:a", "aac", "-shortest"]
    args += (extra or []) + [out]
    run(args)
    return out


@pytest.fixture(scope="session")
def engine():  # type: ignore[no-untyped-def]
    import camshow_deepfaker as cd

    return cd.Engine()


@pytest.fixture(scope="session")
def t1() -> np.ndarray:
    return read_rgb(sample("t1.jpg"))


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    return read_rgb(sample("astronaut.png"))
