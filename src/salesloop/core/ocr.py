"""The one OCR engine of salesloop (DESIGN.md: rapidocr with the PP-OCR models in its wheel, offline):
business cards (C1.1, `intake.cards`) and evidence attachments (C3.4, `engagement.ocr`) both read
text through here, so the engine is loaded once per process and configured in one place.

Loading the models costs ~1 s and ~100 MB, so it happens lazily, in the process that reads (a task
worker), never at import time in a web process.
"""

from __future__ import annotations

import functools
import io
import math
import os
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError


@dataclass(frozen=True)
class OcrLine:
    """One line of text as the OCR engine found it: the text, its box (4 corners, clockwise from
    top-left, in pixels of the upright image) and the engine's confidence (0-1)."""

    text: str
    box: list[list[int]]
    score: float

    @property
    def height(self) -> float:
        (x0, y0), (x1, y1), (x2, y2), (x3, y3) = self.box
        return (math.dist((x0, y0), (x3, y3)) + math.dist((x1, y1), (x2, y2))) / 2

    @property
    def left(self) -> int:
        return min(p[0] for p in self.box)

    @property
    def right(self) -> int:
        return max(p[0] for p in self.box)

    @property
    def top(self) -> int:
        return min(p[1] for p in self.box)

    @property
    def bottom(self) -> int:
        return max(p[1] for p in self.box)

    def as_json(self) -> dict[str, Any]:
        return {"text": self.text, "box": self.box, "score": self.score}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OcrLine:
        return cls(text=str(data["text"]), box=[list(map(int, p)) for p in data["box"]], score=data["score"])


class OcrUnreadable(Exception):
    """The bytes are not an image the engine can read; the message is the reason a user sees."""


def ocr_threads() -> int:
    """onnxruntime intra-op threads per process (`SALESLOOP_OCR_THREADS`; 0 = onnxruntime's
    default, one per core). With several worker processes on few cores, 1 each avoids oversubscribing
    (bench/ocr.py measures both)."""
    try:
        return max(0, int(os.environ.get("SALESLOOP_OCR_THREADS", "0")))
    except ValueError:
        return 0


@functools.lru_cache(maxsize=1)
def ocr_engine() -> Any:
    from rapidocr import RapidOCR  # loads onnxruntime: only in the process that reads

    params: dict[str, Any] = {"Global.log_level": "warning"}
    threads = ocr_threads()
    if threads:
        params["EngineConfig.onnxruntime.intra_op_num_threads"] = threads
    return RapidOCR(params=params)


@functools.lru_cache(maxsize=1)
def ocr_engine_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"rapidocr {version('rapidocr')}"
    except PackageNotFoundError:  # pragma: no cover - rapidocr is a dependency
        return "rapidocr"


def image_open_upright(image_bytes: bytes) -> Image.Image:
    """The image as RGB pixels, upright: phone photos carry their orientation in EXIF."""
    try:
        with Image.open(io.BytesIO(image_bytes)) as opened:
            return ImageOps.exif_transpose(opened).convert("RGB")
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError) as exc:
        raise OcrUnreadable(f"the image cannot be opened: {exc}") from exc


def ocr_image_read(image: Image.Image) -> list[OcrLine]:
    """The text lines on an upright RGB image, in the engine's reading order (top to bottom)."""
    result = ocr_engine()(image)
    if result.boxes is None or result.txts is None or result.scores is None:
        return []
    return [
        OcrLine(
            text=str(text).strip(),
            box=[[round(float(x)), round(float(y))] for x, y in box.tolist()],
            score=round(float(score), 3),
        )
        for box, text, score in zip(result.boxes, result.txts, result.scores, strict=True)
        if str(text).strip()
    ]
