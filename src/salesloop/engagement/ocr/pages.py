"""The pages of an attachment as images to OCR: an image file is one page; a PDF's pages are the
page images a scanner embedded in it.

No PDF rasteriser is installed (pypdfium2 / PyMuPDF are not dependencies, and adding one needs a
decision), so a PDF is read the way scanners write it: every image XObject that is a JPEG
(`/DCTDecode`) — or an uncompressed-by-predictor `/FlateDecode` RGB/grey image — is decoded with
Pillow, in file order, which is page order for scanner output. A PDF whose pages are only text and
vector drawing has no page image: it is `skipped` with that reason (its text layer is searchable in
the PDF itself; extracting it is future work, docs/ocr.md).
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Iterator

from PIL import Image

from salesloop.core.ocr import OcrUnreadable, image_open_upright

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})
PDF_TYPE = "application/pdf"
MAX_PAGES = 30  # a long scanned contract; beyond it the first pages are read and the reason says so
MIN_PAGE_SIDE = 300  # smaller embedded images are logos and icons, not pages
MAX_PIXELS = 60_000_000


def ocr_able(content_type: str) -> bool:
    return content_type in IMAGE_TYPES or content_type == PDF_TYPE


class NoPageImages(Exception):
    """A PDF without scanned page images: nothing for OCR."""


OBJ_RE = re.compile(rb"(\d+)\s+(\d+)\s+obj\s*<<")
STREAM_RE = re.compile(rb"stream\r?\n")


def _dict_value(head: bytes, key: bytes) -> bytes | None:
    match = re.search(rb"/" + key + rb"\s*(/[A-Za-z0-9]+|\[[^\]]*\]|\d+(?:\s+\d+\s+R)?)", head)
    return match.group(1) if match else None


def _pdf_images(data: bytes) -> Iterator[Image.Image]:
    for match in OBJ_RE.finditer(data):
        start = match.end() - 2
        stream_at = STREAM_RE.search(data, start, start + 4000)
        if stream_at is None:
            continue
        head = data[start : stream_at.start()]
        if b"endobj" in head:  # an object without a stream (a page, a font): not an image
            continue
        if b"/Image" not in head or b"/Subtype" not in head:
            continue
        body_start = stream_at.end()
        length = _dict_value(head, b"Length")
        if length and length.isdigit():
            body = data[body_start : body_start + int(length)]
        else:  # an indirect /Length: the stream runs to `endstream`
            end = data.find(b"endstream", body_start)
            body = data[body_start:end].rstrip(b"\r\n") if end > 0 else b""
        filters = _dict_value(head, b"Filter") or b""
        try:
            if b"DCTDecode" in filters and b"FlateDecode" not in filters:
                with Image.open(io.BytesIO(body)) as jpeg:
                    yield jpeg.convert("RGB")
            elif filters.strip(b"[] ") == b"/FlateDecode" and b"/DecodeParms" not in head:
                width = int(_dict_value(head, b"Width") or 0)
                height = int(_dict_value(head, b"Height") or 0)
                bits = int(_dict_value(head, b"BitsPerComponent") or 8)
                space = _dict_value(head, b"ColorSpace") or b""
                mode = {b"/DeviceRGB": "RGB", b"/DeviceGray": "L"}.get(space)
                if mode is None or bits != 8 or width * height > MAX_PIXELS:
                    continue
                raw = zlib.decompress(body)
                yield Image.frombytes(mode, (width, height), raw).convert("RGB")
        except (OSError, ValueError, zlib.error, Image.DecompressionBombError):
            continue  # one unreadable image does not stop the other pages


def page_images(content: bytes, content_type: str) -> tuple[list[Image.Image], str]:
    """(pages as upright RGB images, a note for the reason when pages were left out)."""
    if content_type in IMAGE_TYPES:
        return [image_open_upright(content)], ""
    if content_type != PDF_TYPE:
        raise OcrUnreadable(f"{content_type or 'this file type'} is not read by OCR")
    pages = [image for image in _pdf_images(content) if min(image.size) >= MIN_PAGE_SIDE]
    if not pages:
        raise NoPageImages("the PDF has no scanned page images (a text PDF is not OCR'd)")
    note = f"only the first {MAX_PAGES} of {len(pages)} pages were read" if len(pages) > MAX_PAGES else ""
    return pages[:MAX_PAGES], note
