"""OCR of evidence attachments (SPEC C3.4, issue 6 item 3): text, key facts, the signed verdict, the
company check and the search. Design: docs/ocr.md."""
