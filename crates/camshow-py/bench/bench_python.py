"""The Python package's figures (docs/performance.md), measured side by side in one run.

1. What a call from Python adds to `engine.swap` on one 720p frame: the
   array conversions and the GIL hand-over alone (`_passthrough`), next to
   numpy's own copy of the same array; and the whole swap timed from Python
   next to the same work timed inside Rust (`_time_swap`), interleaved.
2. Threads: swaps from two Python threads sharing one engine against one
   thread (the GIL is released while the engine works).
3. Segment parallelism: the same videos on a local Ray cluster with one
   worker and with two (each worker single-threaded, so that the ratio shows
   what the segments add).

    target/py-test-venv/bin/python crates/camshow-py/bench/bench_python.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import camshow_deepfaker as cd

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from conftest import astronaut_clip, read_rgb, sample  # noqa: E402


def median_ms(f, n: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def overhead() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "t1-720p.png"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-i", str(sample("t1.jpg")), "-vf", "crop=1280:720:0:100", str(p)], check=True
        )
        frame = read_rgb(p)
    assert frame.shape == (720, 1280, 3)
    engine = cd.Engine({"runtime": {"intra_threads": 1}})
    source = engine.prepare_source(sample("astronaut.png"))
    for _ in range(3):
        engine.swap(source, frame)
    passthrough = median_ms(lambda: engine._passthrough(frame), 500)
    numpy_copy = median_ms(lambda: frame.copy(), 500)
    py, rs = [], []
    for _ in range(15):
        t = time.perf_counter()
        engine.swap(source, frame)
        py.append(time.perf_counter() - t)
        rs.extend(engine._time_swap(source, frame, 1))
    return {
        "passthrough_ms": passthrough,
        "numpy_copy_ms": numpy_copy,
        "swap_from_python_ms": statistics.median(py) * 1000,
        "swap_inside_rust_ms": statistics.median(rs) * 1000,
    }


def threads() -> dict[str, float]:
    """Swaps from one thread and from two threads sharing one engine (one
    intra-op thread each, so that what the released GIL allows shows)."""
    from concurrent.futures import ThreadPoolExecutor

    frame = read_rgb(sample("t1.jpg"))
    engine = cd.Engine({"runtime": {"intra_threads": 1}})
    source = engine.prepare_source(sample("astronaut.png"))
    engine.swap(source, frame)
    n = 8
    t = time.perf_counter()
    for _ in range(n):
        engine.swap(source, frame)
    one = time.perf_counter() - t
    with ThreadPoolExecutor(max_workers=2) as pool:
        t = time.perf_counter()
        list(pool.map(lambda _: engine.swap(source, frame), range(n)))
        two = time.perf_counter() - t
    return {"swaps": n, "seconds_1_thread": one, "seconds_2_threads": two, "ratio_2_to_1": two / one}


def segments() -> dict[str, float]:
    import ray

    from camshow_deepfaker.ray import swap_videos

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    settings = {"video": {"workers": 1}, "runtime": {"intra_threads": 1}}
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as d:
        clips = [astronaut_clip(Path(d), f"{n}.mp4", seconds=8) for n in "ab"]
        jobs = [{"source": str(sample("t1.jpg")), "target": str(c), "output": str(c) + ".out.mp4"} for c in clips]
        swap_videos(jobs[:1], settings, workers=2, segments_per_video=2)  # warm the workers' imports
        for workers in (1, 2):
            t = time.perf_counter()
            reports = swap_videos(jobs, settings, workers=workers, segments_per_video=2)
            out[f"seconds_{workers}_worker"] = time.perf_counter() - t
            out["frames"] = sum(r["frames"] for r in reports)
    ray.shutdown()
    out["ratio_2_to_1"] = out["seconds_2_worker"] / out["seconds_1_worker"]
    return out


if __name__ == "__main__":
    os.environ.setdefault("CAMSHOW_CONFIG", "/nonexistent/camshow.toml")
    report = {"overhead": overhead(), "threads": threads(), "segments": segments(), "cpus": os.cpu_count()}
    print(json.dumps(report, indent=2))
