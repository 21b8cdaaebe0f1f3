"""Video jobs (progress, cancellation, Ctrl-C), segments, streams and live sessions."""

from __future__ import annotations

import _thread
import threading
from pathlib import Path

import numpy as np
import pytest

import camshow_deepfaker as cd
from conftest import astronaut_clip, camshow_bin, exiftool, ffprobe, frames_of, marked, run, sample


def streams(p: Path) -> tuple[int, float, float | None]:
    """Video frames, video duration and audio duration."""
    info = ffprobe(p)
    v = next(s for s in info["streams"] if s["codec_type"] == "video")
    a = next((s for s in info["streams"] if s["codec_type"] == "audio"), None)
    dur = lambda s: float(s.get("duration") or info["format"]["duration"])  # noqa: E731
    return int(v["nb_read_frames"]), dur(v), dur(a) if a else None


def leftovers(d: Path) -> list[str]:
    return [p.name for p in d.iterdir() if p.name.startswith(".")]


@pytest.fixture(scope="module")
def source(engine: cd.Engine) -> cd.Source:
    return engine.prepare_source(sample("t1.jpg"))


def test_a_video_job_reports_progress_and_writes_provenance(tmp_path: Path, engine: cd.Engine, source: cd.Source) -> None:
    clip = astronaut_clip(tmp_path, "clip.mp4")
    out = tmp_path / "out.mp4"
    seen: list[tuple[int, int | None]] = []
    report = engine.swap_video(source, clip, out, progress=lambda done, total: seen.append((done, total)))
    assert report["frames"] == 20 and report["frames_swapped"] == 20, report
    assert Path(report["output"]) == out
    assert [d for d, _ in seen] == list(range(1, 21))
    assert all(t == 20 for _, t in seen)
    frames, vdur, adur = streams(out)
    assert frames == 20 and abs(vdur - 2.0) < 0.11 and adur is not None and abs(adur - 2.0) < 0.06
    assert exiftool("XMP:DigitalSourceType", out).endswith("compositeWithTrainedAlgorithmicMedia")
    assert exiftool("XMP:Operation", out) == "face-swap"
    # Frames never crossed into Python, but they did change where the face is.
    before, after = frames_of(clip)[10], frames_of(out)[10]
    face = np.abs(before[60:140, 160:240].astype(int) - after[60:140, 160:240]).mean()
    corner = np.abs(before[0:60, 360:440].astype(int) - after[0:60, 360:440]).mean()
    assert face > 8 and corner < 3, (face, corner)
    assert leftovers(tmp_path) == []


def test_returning_false_from_progress_cancels_and_writes_nothing(tmp_path: Path, engine: cd.Engine, source: cd.Source) -> None:
    clip = astronaut_clip(tmp_path, "clip.mp4")
    out = tmp_path / "out.mp4"
    with pytest.raises(cd.CancelledError):
        engine.swap_video(source, clip, out, progress=lambda done, total: done < 5)
    assert not out.exists() and leftovers(tmp_path) == []

    def boom(done: int, total: int | None) -> None:
        if done == 3:
            raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        engine.swap_video(source, clip, out, progress=boom)
    assert not out.exists() and leftovers(tmp_path) == []


def test_ctrl_c_stops_a_video_job_cleanly(tmp_path: Path, engine: cd.Engine, source: cd.Source) -> None:
    clip = astronaut_clip(tmp_path, "long.mp4", seconds=20)
    out = tmp_path / "out.mp4"
    started = threading.Event()
    timer = threading.Timer(0, lambda: (started.wait(), _thread.interrupt_main()))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        engine.swap_video(source, clip, out, progress=lambda done, total: started.set())
    timer.join()
    assert not out.exists() and leftovers(tmp_path) == []


def test_segments_join_to_the_single_run(tmp_path: Path, engine: cd.Engine, source: cd.Source) -> None:
    clip = astronaut_clip(tmp_path, "clip.mp4", seconds=3, extra=["-g", "100", "-sc_threshold", "0"])
    single = tmp_path / "single.mp4"
    engine.swap_video(source, clip, single)
    parts = []
    for i in (1, 0, 2):
        part = tmp_path / f"part{i}.mp4"
        r = engine.swap_video(source, clip, part, segment=(i, 3))
        assert r["segment"] == (i, 3) and r["frames"] == 10
        assert streams(part)[2] is None, "parts leave the audio to the join"
        parts.append(part)
    # The CLI's parts and Python's are the same kind of file.
    cli_part = tmp_path / "cli-part1.mp4"
    run([camshow_bin(), "swap", "-s", sample("t1.jpg"), "-t", clip, "-o", cli_part, "--segment", "1/3"])
    joined = tmp_path / "joined.mp4"
    report = cd.join_segments([parts[1], cli_part, parts[2]], clip, joined)
    assert report["segments"] == 3 and report["frames"] == 30 and report["audio"] is True
    frames, vdur, adur = streams(joined)
    sframes, svdur, _ = streams(single)
    assert frames == sframes == 30 and abs(vdur - svdur) < 1e-3 and adur is not None
    a, b = frames_of(single).astype(int), frames_of(joined).astype(int)
    diff = [float(np.abs(a[n] - b[n]).mean()) for n in range(30)]
    assert max(diff) < 3.0, diff
    assert exiftool("XMP:DigitalSourceType", joined).endswith("compositeWithTrainedAlgorithmicMedia")
    with pytest.raises(cd.InvalidInputError, match="missing"):
        cd.join_segments([parts[1], parts[2]], clip, tmp_path / "bad.mp4")
    with pytest.raises(cd.InvalidInputError, match="below 3"):
        engine.swap_video(source, clip, tmp_path / "x.mp4", segment=(3, 3))
    with pytest.raises(cd.InvalidInputError, match="not a video"):
        engine.swap_video(source, sample("t1.jpg"), tmp_path / "x.mp4")


def test_process_frame_tracks_and_follows_the_live_safety_schedule(engine: cd.Engine, source: cd.Source, tmp_path: Path) -> None:
    frames = frames_of(astronaut_clip(tmp_path, "clip.mp4"))
    engine.reset_stream()
    outs = [engine.process_frame(source, np.ascontiguousarray(f), fps=10) for f in frames[:6]]
    for f, o in zip(frames, outs):
        assert o.shape == f.shape
        assert np.abs(o[60:140, 160:240].astype(int) - f[60:140, 160:240]).mean() > 8
    # An unsafe frame holds swapping: it and the frames after it (within the
    # cool-down) go out unchanged.
    engine.reset_stream()
    bad = marked(np.ascontiguousarray(frames[0]), (0, 0, 100, 100))
    assert np.array_equal(engine.process_frame(source, bad, fps=10), bad)
    nxt = np.ascontiguousarray(frames[1])
    assert np.array_equal(engine.process_frame(source, nxt, fps=10), nxt)
    # BGR in, BGR out: the same frame as RGB in a fresh stream.
    engine.reset_stream()
    from_bgr = engine.process_frame(source, np.ascontiguousarray(frames[2][:, :, ::-1]), color="bgr", fps=10)
    engine.reset_stream()
    from_rgb = engine.process_frame(source, np.ascontiguousarray(frames[2]), fps=10)
    assert np.array_equal(from_bgr[:, :, ::-1], from_rgb)


def test_a_live_session_yields_swapped_frames(engine: cd.Engine, source: cd.Source, tmp_path: Path) -> None:
    clip = astronaut_clip(tmp_path, "clip.mp4")
    got = []
    with engine.live_session(source, f"file:{clip}", max_frames=8) as live:
        for frame in live:
            assert frame.shape == (448, 448, 3) and frame.dtype == np.uint8
            got.append(frame)
    assert 1 <= len(got) <= 8
    stats = live.stats
    assert stats is not None and stats["processed"] >= len(got) and stats["safety_checks"] >= 1
    # Swapped: the face region differs from the clip's frames.
    original = frames_of(clip)
    assert min(np.abs(g[60:140, 160:240].astype(int) - original[:, 60:140, 160:240]).mean(axis=(1, 2, 3)).min() for g in got[-3:]) > 5
    with pytest.raises(cd.CamshowError):
        engine.live_session(source, "file:/nonexistent/clip.mp4")
    # A loop left early: the session stops when it is dropped.
    live = engine.live_session(source, "test", size=(320, 240))
    first = next(iter(live))
    assert first.shape == (240, 320, 3)
    live.stop()
    assert live.stats is not None and list(live) == []
