"""Split a video job into parts run in parallel (threads here; processes or
machines work the same way: `camshow swap --segment i/n`), then join them
without re-encoding.

    python video_segments.py me.jpg clip.mp4 out.mp4 4
"""

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import camshow_deepfaker as cd


def main(source_photo: str, target: str, output: str, parts: int) -> None:
    engine = cd.Engine({"video": {"workers": 1}})
    source = engine.prepare_source(source_photo)
    names = [Path(output).with_suffix(f".part{i}.mp4") for i in range(parts)]

    def run(i: int) -> int:
        report = engine.swap_video(source, target, names[i], segment=(i, parts))
        return int(report["frames"])

    with ThreadPoolExecutor(max_workers=parts) as pool:
        frames = sum(pool.map(run, range(parts)))
    joined = cd.join_segments(list(names), target, output)
    for n in names:
        n.unlink()
    print(f"{frames} frames in {parts} parts, joined into {joined['output']}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
