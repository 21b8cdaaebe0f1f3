"""The cluster examples in docs/cluster run as written: the Kubernetes
Indexed Job's and the join Job's commands (with /data in a temporary
folder and the index from JOB_COMPLETION_INDEX), and the Slurm array script."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import astronaut_clip, camshow_bin, exiftool, ffprobe, sample

yaml = pytest.importorskip("yaml", reason="PyYAML comes with ray[data], installed by scripts/test-python.sh")
DOCS = Path(__file__).parents[3] / "docs/cluster"


def sh(command: str, env: dict[str, str], cwd: Path) -> None:
    full = {**os.environ, "PATH": f"{camshow_bin().parent}{os.pathsep}{os.environ['PATH']}", **env}
    got = subprocess.run(["sh", "-c", command], env=full, cwd=cwd, capture_output=True, text=True)
    assert got.returncode == 0, f"{command}: {got.stderr}"


def frames_and_audio(p: Path) -> tuple[int, bool]:
    info = ffprobe(p)
    v = next(s for s in info["streams"] if s["codec_type"] == "video")
    return int(v["nb_read_frames"]), any(s["codec_type"] == "audio" for s in info["streams"])


def test_the_kubernetes_indexed_job_and_its_join(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(sample("t1.jpg"), data / "source.jpg")
    astronaut_clip(data, "video.mp4", seconds=3)
    job = yaml.safe_load((DOCS / "segments-job.yaml").read_text())
    assert job["kind"] == "Job" and job["spec"]["completionMode"] == "Indexed"
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert int(env["SEGMENTS"]) == job["spec"]["completions"]
    command = container["args"][0].replace("/data", str(data))
    for index in range(job["spec"]["completions"]):
        sh(command, {**env, "JOB_COMPLETION_INDEX": str(index)}, tmp_path)
    join = yaml.safe_load((DOCS / "join-job.yaml").read_text())
    sh(join["spec"]["template"]["spec"]["containers"][0]["args"][0].replace("/data", str(data)), {}, tmp_path)
    out = data / "video-swapped.mp4"
    assert frames_and_audio(out) == (30, True)
    assert exiftool("XMP:DigitalSourceType", out).endswith("compositeWithTrainedAlgorithmicMedia")


def test_the_slurm_array_script(tmp_path: Path) -> None:
    clip = astronaut_clip(tmp_path, "video.mp4", seconds=2)
    for task in range(2):
        sh(
            f"{DOCS / 'slurm-array.sh'} {sample('t1.jpg')} video.mp4",
            {"SLURM_ARRAY_TASK_ID": str(task), "SLURM_ARRAY_TASK_COUNT": "2"},
            tmp_path,
        )
    sh("camshow join -t video.mp4 -o video-swapped.mp4 parts/part-*.mp4", {}, tmp_path)
    assert frames_and_audio(tmp_path / "video-swapped.mp4") == (20, True)
    assert clip.is_file()
