"""Searching OCR'd evidence text (issue 6 item 3: "the text is searchable").

Chinese has no spaces between words and no tokeniser is installed (jieba would be a new
dependency), so the search is a substring match: the stored `search_text` and the query are
normalised the same way — NFKC (full-width → plain), lower case, whitespace removed (OCR splits and
joins lines and spaces unpredictably: 「139 0571 2345」 and 「13905712345」 must both match) — and
matched with the database's LIKE (`contains`). It is scoped first by the leads the user sees, which
is what keeps it fast for a rep; for a director over millions of rows a trigram index (pg_trgm) or
an FTS5 table would be the next step (docs/ocr.md).
"""

from __future__ import annotations

import re
import unicodedata

MIN_QUERY = 1
MAX_QUERY = 100


def search_normalise(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text or "")).lower()
