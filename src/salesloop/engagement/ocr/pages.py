"""The pages of an attachment as images to OCR: an image file is one page; a PDF's pages are
rendered by PDFium (`pypdfium2`) at 150 dpi — scanned pages whatever their image encoding (JPEG,
Flate, CCITT fax, JBIG2), and text or vector pages alike, so a proposal exported from Word is read
the same way as a scan of a signed contract.
"""

from __future__ import annotations

import pypdfium2 as pdfium
from PIL import Image

from salesloop.core.ocr import OcrUnreadable, image_open_upright

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})
PDF_TYPE = "application/pdf"
MAX_PAGES = 30  # a long scanned contract; beyond it the first pages are read and the reason says so
RENDER_DPI = 150  # A4 at 1240 × 1754 px: what the OCR models read best (small text stays legible)
MAX_PIXELS = 60_000_000


def ocr_able(content_type: str) -> bool:
    return content_type in IMAGE_TYPES or content_type == PDF_TYPE


class NoPageImages(Exception):
    """A PDF without a page: nothing for OCR."""


def _pdf_pages(content: bytes) -> tuple[list[Image.Image], int]:
    """The first MAX_PAGES pages rendered, and the number of pages."""
    try:
        document = pdfium.PdfDocument(content)
    except pdfium.PdfiumError as exc:
        raise OcrUnreadable(f"the PDF cannot be opened (damaged or password-protected): {exc}") from exc
    try:
        count = len(document)
        pages = []
        for index in range(min(count, MAX_PAGES)):
            page = document[index]
            width, height = page.get_size()  # points: 1/72 inch
            scale = RENDER_DPI / 72
            if width * height * scale * scale > MAX_PIXELS:  # a poster-sized page: fit the pixel cap
                scale = (MAX_PIXELS / (width * height)) ** 0.5
            pages.append(page.render(scale=scale).to_pil().convert("RGB"))
        return pages, count
    finally:
        document.close()


def page_images(content: bytes, content_type: str) -> tuple[list[Image.Image], str]:
    """(pages as upright RGB images, a note for the reason when pages were left out)."""
    if content_type in IMAGE_TYPES:
        return [image_open_upright(content)], ""
    if content_type != PDF_TYPE:
        raise OcrUnreadable(f"{content_type or 'this file type'} is not read by OCR")
    pages, count = _pdf_pages(content)
    if not pages:
        raise NoPageImages("the PDF has no pages")
    note = f"only the first {MAX_PAGES} of {count} pages were read" if count > MAX_PAGES else ""
    return pages, note
