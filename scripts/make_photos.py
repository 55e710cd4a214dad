#!/usr/bin/env python3
"""Derived test/benchmark photos, made deterministically with Pillow from the
photos that ``cargo xtask fetch`` extracted into ``<assets>/photos``:

* ``zidane_4480.jpg``      zidane.jpg upscaled 3.5x to 4480x2520 (bicubic, JPEG
                           q92): a real photo wider than 4000 px, for the tiling
                           parity test.
* ``bus_1920x1080.jpg``    bus.jpg (810x1080) centred on a 1920x1080 grey
                           (114) canvas (letterboxed), JPEG q92, for benchmarks.
* ``street_1280x720.jpg``  zidane.jpg re-encoded at 1280x720, JPEG q92.
* ``big_5472x3648.jpg``    astronaut.png upscaled to 1216x1216 (bicubic) and
                           tiled 4.5 x 3 to 5472x3648, JPEG q90, for the tiling
                           benchmark.

* ``bus.png``, ``zidane.png``, ``zidane_4480.png``: the same pixels as the
                           JPEGs above as Pillow decodes them, stored losslessly.
* ``zidane_960x540.jpg``, ``bus_720x960.png``: shrunk into a 640 input without
                           tiling (the resize itself is what the parity test checks).
* ``bus_353x470.jpg``, ``zidane_470x264.png``, ``astronaut_460.png``,
  ``camera_460.jpg``: shrunk into a 320 input without tiling.
* ``seams_2400x1600.jpg``  seven people cut out of bus.jpg (the boxes the 640 model gives
                           them) pasted on gravel.png tiled to 2400x1600, JPEG q92, with
                           ``seams_2400x1600.json``: each person's box and where it lies
                           against the 640 model's tile grid (x 0/512/1024/1536/1760,
                           y 0/512/960, tiles 640): two inside a tile, two across
                           horizontal seams, two across vertical ones (one of them 1.5x),
                           one across a corner (the tiles-without-seams test).
* ``bus_exif6.jpg``, ``bus_exif6.png``: bus.jpg stored sideways (turned 90 degrees
                           counter-clockwise) with EXIF ``Orientation`` 6 ("turn 90
                           degrees clockwise to show"), as phones store photos: a
                           decoder that honours the tag shows the upright bus.

Prints one line per file written (name, size, bytes).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from PIL import Image

GREY = (114, 114, 114)


def save(img: Image.Image, path: Path, quality: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    img.save(tmp, format="JPEG", quality=quality, optimize=False, progressive=False)
    tmp.replace(path)
    print(f"make_photos: {path.name} {img.width}x{img.height} {path.stat().st_size} bytes")


def save_png(img: Image.Image, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    img.save(tmp, format="PNG", compress_level=1)
    tmp.replace(path)
    print(f"make_photos: {path.name} {img.width}x{img.height} {path.stat().st_size} bytes")


def save_sideways(img: Image.Image, path: Path) -> None:
    """``img`` stored turned 90 degrees counter-clockwise, tagged EXIF Orientation 6."""
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways = img.transpose(Image.Transpose.ROTATE_90)
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix == ".png":
        sideways.save(tmp, format="PNG", compress_level=1, exif=exif.tobytes())
    else:
        sideways.save(tmp, format="JPEG", quality=92, exif=exif.tobytes())
    tmp.replace(path)
    print(f"make_photos: {path.name} {sideways.width}x{sideways.height} (Orientation 6) {path.stat().st_size} bytes")


def main() -> int:
    ap = argparse.ArgumentParser(description="derived test/benchmark photos")
    ap.add_argument("--assets", type=Path, default=Path(__file__).resolve().parent.parent / "assets")
    args = ap.parse_args()
    photos = args.assets / "photos"

    zidane = Image.open(photos / "zidane.jpg").convert("RGB")
    bus = Image.open(photos / "bus.jpg").convert("RGB")
    astronaut = Image.open(photos / "astronaut.png").convert("RGB")
    assert zidane.size == (1280, 720), zidane.size
    assert bus.size == (810, 1080), bus.size

    big = zidane.resize((4480, 2520), Image.BICUBIC)
    save(big, photos / "zidane_4480.jpg", 92)

    canvas = Image.new("RGB", (1920, 1080), GREY)
    canvas.paste(bus, ((1920 - bus.width) // 2, (1080 - bus.height) // 2))
    save(canvas, photos / "bus_1920x1080.jpg", 92)

    save(zidane, photos / "street_1280x720.jpg", 92)

    tile = astronaut.resize((1216, 1216), Image.BICUBIC)
    mosaic = Image.new("RGB", (5472, 3648), GREY)
    for y in range(0, 3648, 1216):
        for x in range(0, 5472, 1216):
            mosaic.paste(tile, (x, y))  # the last column is cut at the edge (half a tile)
    save(mosaic, photos / "big_5472x3648.jpg", 90)

    save(zidane.resize((960, 540), Image.LANCZOS), photos / "zidane_960x540.jpg", 92)
    save_png(bus.resize((720, 960), Image.LANCZOS), photos / "bus_720x960.png")
    save(bus.resize((353, 470), Image.LANCZOS), photos / "bus_353x470.jpg", 92)
    save_png(zidane.resize((470, 264), Image.LANCZOS), photos / "zidane_470x264.png")
    save_png(astronaut.resize((460, 460), Image.LANCZOS), photos / "astronaut_460.png")
    camera = Image.open(photos / "camera.png").convert("RGB")
    save(camera.resize((460, 460), Image.LANCZOS), photos / "camera_460.jpg", 92)
    save_sideways(bus, photos / "bus_exif6.jpg")
    save_sideways(bus, photos / "bus_exif6.png")

    for name in ("bus.jpg", "zidane.jpg", "zidane_4480.jpg"):
        decoded = Image.open(photos / name).convert("RGB")
        save_png(decoded, photos / name.replace(".jpg", ".png"))
    make_seams(photos, bus)
    return 0


# The three people of bus.jpg, as the 640 model boxes them (x1, y1, x2, y2).
BUS_PEOPLE = ((217, 394, 349, 889), (34, 385, 218, 910), (687, 346, 810, 881))
# (person, scale, x, y, where): where the person lies against the tile grid.
SEAM_PLACES = (
    (0, 1.0, 150, 8, "inside"),
    (0, 1.0, 1250, 8, "inside"),
    (2, 1.0, 200, 420, "horizontal"),
    (0, 1.0, 1700, 900, "horizontal"),
    (1, 1.0, 490, 20, "vertical"),
    (0, 1.5, 1450, 700, "vertical"),
    (0, 1.0, 1090, 500, "corner"),
)


def make_seams(photos: Path, bus: Image.Image) -> None:
    gravel = Image.open(photos / "gravel.png").convert("RGB")
    canvas = Image.new("RGB", (2400, 1600))
    for y in range(0, canvas.height, gravel.height):
        for x in range(0, canvas.width, gravel.width):
            canvas.paste(gravel, (x, y))
    objects = []
    for person, scale, x, y, where in SEAM_PLACES:
        crop = bus.crop(BUS_PEOPLE[person])
        if scale != 1.0:
            crop = crop.resize((round(crop.width * scale), round(crop.height * scale)), Image.BICUBIC)
        canvas.paste(crop, (x, y))
        objects.append({"where": where, "box": [x, y, x + crop.width, y + crop.height]})
    save(canvas, photos / "seams_2400x1600.jpg", 92)
    tmp = photos / "seams_2400x1600.json.tmp"
    tmp.write_text(json.dumps({"objects": objects}, indent=1) + "\n")
    tmp.replace(photos / "seams_2400x1600.json")


if __name__ == "__main__":
    sys.exit(main())
