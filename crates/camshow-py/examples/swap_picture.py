"""Put the face from one photo on the faces of a picture.

    python swap_picture.py me.jpg group.jpg out.png
"""

import sys

import camshow_deepfaker as cd


def main(source_photo: str, target: str, output: str) -> None:
    engine = cd.Engine({"engine": {"selector": "many"}})
    source = engine.prepare_source(source_photo)
    picture = cd.read_image(target)
    swapped = engine.swap(source, picture)
    cd.write_image(output, swapped)  # with the AI-generated provenance
    print(f"{len(engine.detect(picture))} face(s) swapped into {output}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
