"""Video jobs across a Ray cluster.

Every video is split into segments (``swap_video(..., segment=(i, n))``:
keyframe-aligned where a keyframe is near), the segments run on an actor
pool with Ray Data ``map_batches`` — one engine per actor, built once in
``__init__``, so models load once per worker, never per segment — and the
parts are joined without re-encoding (``join_segments``), with the
target's audio and the provenance.

Paths must be visible to every worker (a shared file system on a real
cluster). The parts are written next to each output, in a hidden folder
removed after the join.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from ._native import Engine, Source, join_segments, sessions_created


class VideoJob(TypedDict):
    """One video: the source photo(s), the target video and the output file."""

    source: str | list[str]
    target: str
    output: str


class SegmentReport(TypedDict):
    index: int
    frames: int
    frames_swapped: int
    worker: str
    sessions_created: int
    seconds: float


class VideoReport(TypedDict):
    output: str
    target: str
    segments: list[SegmentReport]
    frames: int
    frames_swapped: int
    audio: bool
    seconds: float


class _SegmentWorker:
    """One engine per actor, built once; each call runs one segment."""

    def __init__(self, settings: Mapping[str, Any] | str | None, models_dir: str | None) -> None:
        self.engine = Engine(dict(settings) if isinstance(settings, Mapping) else settings, models_dir)
        self.sources: dict[str, Source] = {}
        self.name = f"{os.uname().nodename}:{os.getpid()}:{id(self)}"

    def _source(self, key: str) -> Source:
        if key not in self.sources:
            photos = key.split(os.pathsep)
            self.sources[key] = self.engine.prepare_source(photos if len(photos) > 1 else photos[0])
        return self.sources[key]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {
            k: []
            for k in ("job", "index", "part", "frames", "frames_swapped", "worker", "sessions_created", "seconds")
        }
        for job, index, count, source, target, part in zip(
            batch["job"], batch["index"], batch["count"], batch["source"], batch["target"], batch["part"]
        ):
            start = time.monotonic()
            report = self.engine.swap_video(
                self._source(str(source)), str(target), str(part), segment=(int(index), int(count))
            )
            out["job"].append(int(job))
            out["index"].append(int(index))
            out["part"].append(str(part))
            out["frames"].append(int(report["frames"]))
            out["frames_swapped"].append(int(report["frames_swapped"]))
            out["worker"].append(self.name)
            out["sessions_created"].append(int(sessions_created()))
            out["seconds"].append(time.monotonic() - start)
        return out


def swap_videos(
    jobs: Sequence[VideoJob],
    settings: Mapping[str, Any] | str | None = None,
    *,
    workers: int = 2,
    gpus_per_worker: float | None = None,
    segments_per_video: int | None = None,
    models_dir: str | None = None,
    keep_audio: bool = True,
) -> list[VideoReport]:
    """Swaps faces in many videos on the Ray cluster ``ray.init()`` connected to.

    Each video is split into ``segments_per_video`` parts (default: one per
    worker); ``workers`` actors each hold one engine; with
    ``gpus_per_worker`` each actor reserves that many GPUs; left None, each
    reserves one when the cluster has at least one GPU per worker, and none
    on a cluster without GPUs. Returns one report per video, in order.
    """
    import ray  # noqa: PLC0415 (an optional dependency: camshow-deepfaker[ray])

    if workers < 1:
        raise ValueError("workers must be at least 1")
    if gpus_per_worker is None:
        gpus = float(ray.cluster_resources().get("GPU", 0))
        gpus_per_worker = 1.0 if gpus >= workers else None
    count = segments_per_video or workers
    if count < 1:
        raise ValueError("segments_per_video must be at least 1")
    rows: list[dict[str, Any]] = []
    folders: list[Path] = []
    for j, job in enumerate(jobs):
        output = Path(job["output"])
        folder = output.parent / f".camshow-parts-{output.name}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        folders.append(folder)
        source = job["source"]
        key = os.pathsep.join(source) if isinstance(source, list) else str(source)
        for i in range(count):
            rows.append(
                {
                    "job": j,
                    "index": i,
                    "count": count,
                    "source": key,
                    "target": str(job["target"]),
                    "part": str(folder / f"part-{i:05d}{output.suffix}"),
                }
            )
    start = time.monotonic()
    try:
        ds = ray.data.from_items(rows).map_batches(
            _SegmentWorker,
            fn_constructor_kwargs={"settings": settings, "models_dir": models_dir},
            batch_size=1,
            concurrency=workers,
            num_cpus=1,
            num_gpus=gpus_per_worker or 0,
        )
        done = ds.take_all()
        reports: list[VideoReport] = []
        for j, job in enumerate(jobs):
            parts = sorted((r for r in done if int(r["job"]) == j), key=lambda r: int(r["index"]))
            joined = join_segments([str(r["part"]) for r in parts], job["target"], job["output"], keep_audio=keep_audio)
            reports.append(
                {
                    "output": str(job["output"]),
                    "target": str(job["target"]),
                    "segments": [
                        {
                            "index": int(r["index"]),
                            "frames": int(r["frames"]),
                            "frames_swapped": int(r["frames_swapped"]),
                            "worker": str(r["worker"]),
                            "sessions_created": int(r["sessions_created"]),
                            "seconds": float(r["seconds"]),
                        }
                        for r in parts
                    ],
                    "frames": int(joined["frames"]),
                    "frames_swapped": sum(int(r["frames_swapped"]) for r in parts),
                    "audio": bool(joined["audio"]),
                    "seconds": time.monotonic() - start,
                }
            )
        return reports
    finally:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
