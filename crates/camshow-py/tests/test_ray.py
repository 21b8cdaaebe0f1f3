"""Video jobs across a real local Ray cluster: segments on an actor pool, joined."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import camshow_deepfaker as cd
from conftest import astronaut_clip, exiftool, ffprobe, frames_of, sample

ray = pytest.importorskip("ray", reason="ray[data] is installed by scripts/test-python.sh")


@pytest.fixture(scope="module")
def cluster():  # type: ignore[no-untyped-def]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def counts(p: Path) -> tuple[int, float, float | None]:
    info = ffprobe(p)
    v = next(s for s in info["streams"] if s["codec_type"] == "video")
    a = next((s for s in info["streams"] if s["codec_type"] == "audio"), None)
    dur = lambda s: float(s.get("duration") or info["format"]["duration"])  # noqa: E731
    return int(v["nb_read_frames"]), dur(v), dur(a) if a else None


def test_two_videos_split_run_on_an_actor_pool_and_joined(cluster: None, tmp_path: Path) -> None:
    from camshow_deepfaker.ray import swap_videos

    clips = [
        astronaut_clip(tmp_path, "a.mp4", seconds=3),
        astronaut_clip(tmp_path, "b.mp4", seconds=2, extra=["-g", "7"]),
    ]
    jobs = [{"source": str(sample("t1.jpg")), "target": str(c), "output": str(tmp_path / f"out-{c.name}")} for c in clips]
    reports = swap_videos(jobs, {"video": {"workers": 1}}, workers=2, segments_per_video=3)
    assert [r["output"] for r in reports] == [j["output"] for j in jobs]
    engine = cd.Engine({"video": {"workers": 1}})
    source = engine.prepare_source(sample("t1.jpg"))
    for clip, job, report in zip(clips, jobs, reports):
        out = Path(job["output"])
        assert len(report["segments"]) == 3 and report["audio"] is True
        assert sum(s["frames"] for s in report["segments"]) == report["frames"]
        # The same as one machine's run of the same settings.
        single = tmp_path / f"single-{clip.name}"
        engine.swap_video(source, clip, single)
        (frames, vdur, adur), (sframes, svdur, sadur) = counts(out), counts(single)
        assert frames == sframes == report["frames"], (frames, sframes)
        assert abs(vdur - svdur) < 1e-3 and adur is not None and sadur is not None and abs(adur - sadur) < 0.05
        a, b = frames_of(single).astype(int), frames_of(out).astype(int)
        diff = [float(np.abs(a[n] - b[n]).mean()) for n in range(frames)]
        assert max(diff) < 3.0, diff
        assert exiftool("XMP:DigitalSourceType", out).endswith("compositeWithTrainedAlgorithmicMedia")
        assert exiftool("Keys:IptcDigitalSourceType", out).endswith("compositeWithTrainedAlgorithmicMedia")
        assert exiftool("XMP:Operation", out) == "face-swap"
        assert not any(p.name.startswith(".camshow-parts") for p in tmp_path.iterdir())
    # One engine per actor, built once: at most two workers ran the six
    # segments, and each worker's model count stayed the same across its segments.
    segments = [s for r in reports for s in r["segments"]]
    workers = {s["worker"] for s in segments}
    assert 1 <= len(workers) <= 2, workers
    for w in workers:
        loaded = {s["sessions_created"] for s in segments if s["worker"] == w}
        assert len(loaded) == 1, f"worker {w} loaded models again: {loaded}"
