"""Many videos across a Ray cluster (pip install "camshow-deepfaker[ray]").

    python ray_videos.py me.jpg a.mp4 b.mp4
"""

import sys

import ray

from camshow_deepfaker.ray import VideoJob, swap_videos


def main(source_photo: str, targets: list[str]) -> None:
    ray.init()  # or ray.init(address="auto") on a cluster; paths on shared storage
    jobs: list[VideoJob] = [
        {"source": source_photo, "target": t, "output": t.rsplit(".", 1)[0] + "-swapped.mp4"} for t in targets
    ]
    # On GPU nodes, reserve one GPU per worker: gpus_per_worker=1.
    for report in swap_videos(jobs, {"engine": {"selector": "many"}}, workers=2):
        workers = {s["worker"] for s in report["segments"]}
        print(f"{report['output']}: {report['frames']} frames by {len(workers)} worker(s) in {report['seconds']:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
