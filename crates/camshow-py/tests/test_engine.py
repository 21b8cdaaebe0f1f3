"""The engine on pictures: detection, swaps (equal to the CLI's), arrays, errors, threads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import camshow_deepfaker as cd
from conftest import astronaut_clip, camshow_bin, exiftool, marked, read_rgb, run, sample, write_png


def test_the_package_says_which_runtime_it_found(engine: cd.Engine) -> None:
    found = cd.find_runtime()
    assert Path(found["path"]).is_file()
    assert found["found_by"] in {"ORT_DYLIB_PATH", "setup cache", "Python onnxruntime package", "system library path"}
    assert engine.runtime["version"].count(".") == 2
    assert Path(engine.runtime["path"]) == Path(found["path"])
    assert "consent" in cd.USAGE_TERMS


def test_detect_finds_the_six_faces_of_t1(engine: cd.Engine, t1: np.ndarray) -> None:
    faces = engine.detect(t1)
    assert len(faces) == 6
    for f in faces:
        assert f.bbox.shape == (4,) and f.bbox.dtype == np.float32
        x1, y1, x2, y2 = f.bbox
        assert 0 <= x1 < x2 <= t1.shape[1] and 0 <= y1 < y2 <= t1.shape[0]
        assert f.kps.shape == (5, 2) and f.kps.dtype == np.float32
        # The five points lie in their box.
        assert np.all((f.kps[:, 0] >= x1 - 2) & (f.kps[:, 0] <= x2 + 2))
        assert 0.3 < f.score <= 1.0
        assert f.landmarks is None and f.embedding is None  # those models are not installed here
    assert repr(faces[0]).startswith("Face(bbox=[") and "score=" in repr(faces[0])
    with pytest.raises(AttributeError):
        faces[0].score = 0.5  # type: ignore[misc]


def test_detect_on_the_astronaut(engine: cd.Engine, astronaut: np.ndarray) -> None:
    faces = engine.detect(astronaut)
    assert len(faces) == 1
    x1, y1, x2, y2 = faces[0].bbox
    assert 150 < (x1 + x2) / 2 < 260 and 60 < (y1 + y2) / 2 < 160


@pytest.mark.parametrize("many", [False, True])
def test_a_swap_equals_the_cli_output_pixel_for_pixel(tmp_path: Path, engine: cd.Engine, many: bool) -> None:
    # The same pixels in for both: a lossless copy of t1.
    target = write_png(read_rgb(sample("t1.jpg")), tmp_path / "t1.png")
    cli_out = tmp_path / "cli.png"
    args = [camshow_bin(), "swap", "-s", sample("astronaut.png"), "-t", target, "-o", cli_out]
    run(args + (["--many-faces"] if many else []))
    settings = {"engine": {"selector": "many"}} if many else None
    e = cd.Engine(settings) if many else engine
    source = e.prepare_source(sample("astronaut.png"))
    ours = e.swap(source, read_rgb(target))
    theirs = read_rgb(cli_out)
    assert ours.shape == theirs.shape and ours.dtype == np.uint8
    assert np.array_equal(ours, theirs), f"{np.count_nonzero(ours != theirs)} values differ"
    changed = np.any(ours != read_rgb(target), axis=2)
    assert changed.mean() > 0.002, "faces were swapped"


def test_sources_from_arrays_equal_sources_from_files(engine: cd.Engine, astronaut: np.ndarray, t1: np.ndarray) -> None:
    a = engine.swap(engine.prepare_source(astronaut), t1)
    b = engine.swap(engine.prepare_source(sample("astronaut.png")), t1)
    assert np.array_equal(a, b)
    two = engine.prepare_source([astronaut, astronaut[:, ::-1].copy()])
    assert two.photos == 2 and engine.prepare_source(astronaut).photos == 1
    assert "photos=2" in repr(two)


def test_bgr_in_gives_bgr_out(engine: cd.Engine, astronaut: np.ndarray, t1: np.ndarray) -> None:
    source = engine.prepare_source(astronaut)
    rgb = engine.swap(source, t1)
    bgr = engine.swap(source, np.ascontiguousarray(t1[:, :, ::-1]), color="bgr")
    assert np.array_equal(bgr[:, :, ::-1], rgb)
    src_bgr = engine.prepare_source(np.ascontiguousarray(astronaut[:, :, ::-1]), color="bgr")
    assert np.array_equal(engine.swap(src_bgr, t1), rgb)
    # The input is never changed.
    before = t1.copy()
    engine.swap(source, t1)
    assert np.array_equal(t1, before)


def test_bad_arrays_are_refused_clearly(engine: cd.Engine, astronaut: np.ndarray, t1: np.ndarray) -> None:
    source = engine.prepare_source(astronaut)
    with pytest.raises(TypeError, match="uint8"):
        engine.swap(source, t1.astype(np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        engine.swap(source, t1[:, ::2])
    with pytest.raises(ValueError, match="C-contiguous"):
        engine.swap(source, t1[:, :, ::-1])
    with pytest.raises(ValueError, match="H×W×3"):
        engine.swap(source, t1[:, :, 0].copy())
    with pytest.raises(ValueError, match="3 colour channels"):
        engine.swap(source, np.zeros((64, 64, 4), np.uint8))
    with pytest.raises(ValueError, match="3 colour channels"):
        engine.swap(source, np.zeros((0, 64, 3), np.uint8))
    with pytest.raises(TypeError, match="numpy array"):
        engine.swap(source, t1.tolist())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rgb"):
        engine.swap(source, t1, color="hsv")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        engine.prepare_source([astronaut, 3])  # type: ignore[list-item]


def test_errors_come_by_type(tmp_path: Path, engine: cd.Engine, astronaut: np.ndarray, t1: np.ndarray) -> None:
    source = engine.prepare_source(astronaut)
    blank = np.full((240, 320, 3), 127, np.uint8)
    with pytest.raises(cd.NoFaceError, match="no face"):
        engine.swap(source, blank)
    with pytest.raises(cd.NoFaceError):
        engine.prepare_source(blank)
    # The gate (the test build's marker stands in for unsafe content).
    with pytest.raises(cd.UnsafeContentError):
        engine.swap(source, marked(t1, (0, 0, 120, 120)))
    with pytest.raises(cd.UnsafeContentError):
        engine.prepare_source(marked(astronaut, (0, 0, 80, 80)))
    with pytest.raises(cd.UnsafeContentError):
        engine.detect(marked(t1, (0, 0, 120, 120)))
    # Just below a face: detection (the whole picture and its tiles) passes;
    # swapping that face checks the region around it first, and refuses.
    body = marked(t1, (300, 300, 40, 40))
    assert len(engine.detect(body)) == 6
    with pytest.raises(cd.UnsafeContentError):
        engine.swap(source, body, selector="many")
    # A missing model, with the command that installs it.
    with pytest.raises(cd.ModelMissingError) as missing:
        cd.Engine({"engine": {"swapper": "inswapper"}})
    assert missing.value.install_command == "camshow models fetch inswapper_128"
    empty = tmp_path / "no-models"
    empty.mkdir()
    with pytest.raises(cd.ModelMissingError) as gate_missing:
        cd.Engine(models_dir=empty)
    assert gate_missing.value.install_command == "camshow models fetch nudenet"
    with pytest.raises(cd.ModelMissingError, match="w600k_r50"):
        engine.scan_faces(sample("t1.jpg"), tmp_path / "map.json")
    # Settings: the CLI's messages.
    with pytest.raises(cd.InvalidInputError, match="selector"):
        cd.Engine({"engine": {"selectr": "many"}})
    with pytest.raises(cd.InvalidInputError, match="quality"):
        cd.Engine({"video.quality": 99})
    with pytest.raises(cd.InvalidInputError, match="does not exist"):
        cd.Engine(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[engine]\nselector = 3\n")
    with pytest.raises(cd.InvalidInputError, match="bad.toml"):
        cd.Engine(bad)
    for t in (cd.UnsafeContentError, cd.NoFaceError, cd.ModelMissingError, cd.CancelledError, cd.InvalidInputError):
        assert issubclass(t, cd.CamshowError)


def test_settings_files_dicts_and_reconfigure(tmp_path: Path, astronaut: np.ndarray, t1: np.ndarray) -> None:
    toml = tmp_path / "camshow.toml"
    toml.write_text('version = 1\n[video]\nquality = 20\n[engine]\nselector = "many"\n')
    e = cd.Engine(toml)
    assert e.settings["video"]["quality"] == 20 and e.settings["engine"]["selector"] == "many"
    assert cd.Engine({"video.quality": 21}).settings["video"]["quality"] == 21
    source = e.prepare_source(astronaut)
    many = e.swap(source, t1)
    loaded = cd.sessions_created()
    e.reconfigure({"engine": {"selector": "one"}})
    assert e.settings["engine"]["selector"] == "one"
    one = e.swap(source, t1)
    assert cd.sessions_created() == loaded, "a selection change loads no model"
    changed = lambda a: np.any(a != t1, axis=2).mean()  # noqa: E731
    assert changed(many) > 2 * changed(one) > 0
    # A per-call selector leaves the engine's settings alone.
    assert np.array_equal(e.swap(source, t1, selector="many"), many)
    assert e.settings["engine"]["selector"] == "one"
    with pytest.raises(cd.InvalidInputError):
        e.reconfigure({"engine": {"opacity": "lots"}})


def test_the_gil_is_released_while_the_engine_works(engine: cd.Engine, astronaut: np.ndarray, t1: np.ndarray) -> None:
    """While one thread is inside engine.swap, another runs Python code.

    The switch interval is made huge, so the GIL changes hands only when a
    thread gives it up: the spinner gives it up at every tick, and the main
    thread only if the engine releases it. (The speed-up from threads is
    measured by the benchmark, not here.)
    """
    source = engine.prepare_source(astronaut)
    ticks = 0
    inside = False
    stop = threading.Event()

    def spin() -> None:
        nonlocal ticks
        while not stop.is_set():
            if inside:
                ticks += 1
            time.sleep(0)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(100.0)
    spinner = threading.Thread(target=spin)
    spinner.start()
    during = []
    try:
        for _ in range(3):
            before = ticks
            inside = True
            engine.swap(source, t1)
            inside = False
            during.append(ticks - before)
    finally:
        stop.set()
        spinner.join()
        sys.setswitchinterval(interval)
    assert min(during) > 10, f"the other thread ran {during} times during the swaps"

    # Threads share one engine: results equal the single-threaded ones.
    expected = engine.swap(source, t1)
    results: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: results.append(engine.swap(source, t1))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and all(np.array_equal(r, expected) for r in results)


def test_pictures_read_and_written_with_provenance(tmp_path: Path, engine: cd.Engine) -> None:
    t1 = cd.read_image(sample("t1.jpg"))
    assert t1.shape == (886, 1280, 3) and t1.dtype == np.uint8
    assert np.array_equal(cd.read_image(sample("t1.jpg"), color="bgr"), t1[:, :, ::-1])
    out = tmp_path / "out.png"
    cd.write_image(out, engine.swap(engine.prepare_source(sample("astronaut.png")), t1))
    assert exiftool("XMP:DigitalSourceType", out).endswith("compositeWithTrainedAlgorithmicMedia")
    assert exiftool("XMP:Operation", out) == "face-swap"
    with pytest.raises(cd.InvalidInputError, match="unsupported output format"):
        cd.write_image(tmp_path / "out.gif2", t1)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(sample("t1.jpg").read_bytes()[:5000])
    with pytest.raises(cd.CamshowError):
        cd.read_image(broken)


EXAMPLES = Path(__file__).parents[1] / "examples"


def test_the_examples_run(tmp_path: Path) -> None:
    out = tmp_path / "swapped.png"
    got = run([sys.executable, EXAMPLES / "swap_picture.py", sample("astronaut.png"), sample("t1.jpg"), out])
    assert "6 face(s)" in got.stdout and out.is_file()
    run([sys.executable, EXAMPLES / "camera_loop.py", sample("astronaut.png")])
    clip = astronaut_clip(tmp_path, "clip.mp4", seconds=2)
    joined = tmp_path / "joined.mp4"
    got = run([sys.executable, EXAMPLES / "video_segments.py", sample("t1.jpg"), clip, joined, "2"])
    assert "20 frames in 2 parts" in got.stdout and joined.is_file()


def test_the_examples_type_check_against_the_stubs() -> None:
    got = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", "/dev/null", str(EXAMPLES)], capture_output=True, text=True
    )
    assert got.returncode == 0, got.stdout + got.stderr


PARITY = Path(__file__).parents[3] / "crates/camshow-core/tests/data/parity"


def test_with_a_recognizer_faces_carry_embeddings_and_targets_scan_into_people(tmp_path: Path) -> None:
    # The parity suite's synthetic w600k_r50 (the real signature, random
    # weights) stands in for the recognizer, given as the CLI's --model-file.
    e = cd.Engine(model_files={"w600k_r50": PARITY / "w600k_r50.onnx"})
    t1 = cd.read_image(sample("t1.jpg"))
    faces = e.detect(t1)
    assert len(faces) == 6
    for f in faces:
        assert f.embedding is not None and f.embedding.shape == (512,)
        assert abs(float(np.linalg.norm(f.embedding)) - 1.0) < 1e-4
    source = e.prepare_source([sample("astronaut.png"), sample("astronaut.png")])
    assert source.embedding is not None and source.photos == 2
    found = e.scan_faces(sample("t1.jpg"), tmp_path / "map.json")
    assert found.faces == 6 and found.frames == 1 and 1 <= len(found) <= 6
    assert found.path == tmp_path / "map.json" and found.path.is_file()
    for person in found.people:
        assert Path(person["thumbnail"]).is_file() or (tmp_path / person["thumbnail"]).is_file()
    assert "people=" in repr(found)
    elsewhere = e.scan_faces(sample("t1.jpg"))
    assert elsewhere.path.is_file() and len(elsewhere) == len(found)
    with pytest.raises(cd.InvalidInputError):
        cd.Engine(model_files={"no_such_model": PARITY / "w600k_r50.onnx"})


def test_an_onnxruntime_package_in_the_same_environment_is_found(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="scripts/test-python.sh installs onnxruntime in the test environment")
    env = {k: v for k, v in os.environ.items() if k not in {"ORT_DYLIB_PATH", "CAMSHOW_PYTHON"}}
    env["CAMSHOW_CACHE"] = str(tmp_path)  # no setup cache: the package is next in the CLI's order
    code = "import camshow_deepfaker as cd, json; r = cd.find_runtime(); print(json.dumps({k: str(v) for k, v in r.items()}))"
    got = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert got.returncode == 0, got.stderr
    found = json.loads(got.stdout)
    assert found["found_by"] == "Python onnxruntime package", found
    assert Path(found["path"]).resolve().is_relative_to(Path(sys.prefix).resolve()), found
