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
* ``bus_exif6.jpg``, ``bus_exif6.png``: bus.jpg stored sideways (turned 90 degrees
                           counter-clockwise) with EXIF ``Orientation`` 6 ("turn 90
                           degrees clockwise to show"), as phones store photos: a
                           decoder that honours the tag shows the upright bus.

Prints one line per file written (name, size, bytes).
"""

from __future__ import annotations

import argparse
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
