"""Swap faces frame by frame in your own loop (frames from OpenCV, a
capture card, a network stream...), keeping the tracker's state between
frames; here the frames come from the built-in test camera.

    python camera_loop.py me.jpg
"""

import sys
import time

import numpy as np
import numpy.typing as npt

import camshow_deepfaker as cd


def frames(count: int) -> list[npt.NDArray[np.uint8]]:
    engine = cd.Engine()
    source = engine.prepare_source(cd.read_image(sys.argv[1]))
    # The whole live pipeline on its own threads; frames as numpy arrays.
    with engine.live_session(source, "test", size=(640, 480), max_frames=count) as live:
        return list(live)


def main() -> None:
    engine = cd.Engine()
    source = engine.prepare_source(sys.argv[1])
    start = time.monotonic()
    shown = 0
    for frame in frames(30):
        out = engine.process_frame(source, frame, fps=30.0)  # BGR frames: color="bgr"
        shown += int(out.shape[2] == 3)
    print(f"{shown} frames in {time.monotonic() - start:.1f} s")


if __name__ == "__main__":
    main()
