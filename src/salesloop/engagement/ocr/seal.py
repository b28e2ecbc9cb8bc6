"""The image cue of a signed page (issue 6 item 3): a red company seal (公章), found with Pillow only.

A Chinese company seal is a red ring, ~4 cm across, with the company name around a star. On a photo or
a scan of a page it is the one roughly round blob of strongly red pixels. The page is shrunk to at
most `WORK_SIDE` pixels, strongly red pixels are marked (red well above green and blue: a pink or
orange tint is not a seal), the mark is thickened by one pixel so the ring's strokes join, and each
connected blob is judged: big enough, about as wide as high, not solid (a red banner or logo block
is filled; a ring is not) and round (its pixels sit inside the inscribed circle, not in the corners
of its box). The blob's measurements are kept as the reasons.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from PIL import Image, ImageChops, ImageFilter

WORK_SIDE = 320  # a seal is ≥ 12 px across at this size on an A4 page; labelling stays fast
RED_MIN = 120  # red channel at least …
RED_MARGIN = 100  # … and this much above both green and blue (pink, orange and brown are not seal ink)
MIN_SIDE_SHARE = 0.05  # the blob's box side, as a share of the page's shorter side
MIN_PIXELS = 40
ASPECT_RANGE = (0.7, 1.43)
FILL_RANGE = (0.06, 0.85)  # blob pixels / box area: a ring (with its star and text), not a block
MAX_CORNER_SHARE = 0.12  # pixels outside the inscribed circle (in the box's corners)


@dataclass(frozen=True)
class SealBlob:
    box: tuple[int, int, int, int]  # in pixels of the original image
    pixels: int  # at the working size
    aspect: float
    fill: float
    corner_share: float
    side_share: float

    @property
    def is_seal(self) -> bool:
        return (
            self.pixels >= MIN_PIXELS
            and self.side_share >= MIN_SIDE_SHARE
            and ASPECT_RANGE[0] <= self.aspect <= ASPECT_RANGE[1]
            and FILL_RANGE[0] <= self.fill <= FILL_RANGE[1]
            and self.corner_share <= MAX_CORNER_SHARE
        )


def red_mask(image: Image.Image) -> Image.Image:
    """1-bit-like L image: 255 where the pixel is strongly red."""
    red, green, blue = image.convert("RGB").split()
    over_green = ImageChops.subtract(red, green)  # clipped at 0
    over_blue = ImageChops.subtract(red, blue)
    strong = red.point(lambda v: 255 if v >= RED_MIN else 0)
    margin_g = over_green.point(lambda v: 255 if v >= RED_MARGIN else 0)
    margin_b = over_blue.point(lambda v: 255 if v >= RED_MARGIN else 0)
    return ImageChops.multiply(ImageChops.multiply(strong, margin_g), margin_b)


def _blobs(mask: Image.Image) -> list[list[tuple[int, int]]]:
    width, height = mask.size
    data = mask.tobytes()
    seen = bytearray(width * height)
    blobs: list[list[tuple[int, int]]] = []
    for start in range(width * height):
        if not data[start] or seen[start]:
            continue
        seen[start] = 1
        queue = deque([start])
        pixels: list[tuple[int, int]] = []
        while queue:
            at = queue.popleft()
            y, x = divmod(at, width)
            pixels.append((x, y))
            for nx, ny in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
                if 0 <= nx < width and 0 <= ny < height:
                    n = ny * width + nx
                    if data[n] and not seen[n]:
                        seen[n] = 1
                        queue.append(n)
        blobs.append(pixels)
    return blobs


def _measure(pixels: list[tuple[int, int]], scale: float, short_side: int) -> SealBlob:
    xs = [p[0] for p in pixels]
    ys = [p[1] for p in pixels]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    w, h = x1 - x0 + 1, y1 - y0 + 1
    cx, cy, radius = (x0 + x1) / 2, (y0 + y1) / 2, max(w, h) / 2
    outside = sum(1 for x, y in pixels if math.hypot((x - cx) * h / w if w else 0, y - cy) > radius + 0.75)
    return SealBlob(
        box=(round(x0 * scale), round(y0 * scale), round((x1 + 1) * scale), round((y1 + 1) * scale)),
        pixels=len(pixels),
        aspect=round(w / h, 3),
        fill=round(len(pixels) / (w * h), 3),
        corner_share=round(outside / len(pixels), 3),
        side_share=round(min(w, h) / short_side, 3),
    )


def red_seal_find(image: Image.Image) -> dict[str, Any]:
    """{"found": bool, "red_pixels": n, "blob": the best candidate's measurements or None}."""
    scale = max(image.size) / WORK_SIDE if max(image.size) > WORK_SIDE else 1.0
    small = (
        image
        if scale == 1.0
        else image.resize(
            (max(1, round(image.width / scale)), max(1, round(image.height / scale))), Image.Resampling.BOX
        )
    )
    mask = red_mask(small).filter(ImageFilter.MaxFilter(3))
    red_pixels = sum(1 for v in mask.tobytes() if v)
    best: SealBlob | None = None
    if red_pixels:
        short_side = min(small.size)
        candidates = [_measure(p, scale, short_side) for p in _blobs(mask) if len(p) >= MIN_PIXELS]
        seals = [c for c in candidates if c.is_seal]
        pool = seals or candidates
        best = max(pool, key=lambda c: c.pixels) if pool else None
    return {
        "found": bool(best and best.is_seal),
        "red_pixels": red_pixels,
        "blob": {**asdict(best), "box": list(best.box)} if best else None,
    }
