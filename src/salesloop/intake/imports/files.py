"""Reading import files: what a file is (CSV, XLSX or XLS, which encoding and delimiter, which row
holds the headers) and its rows as lists of text, streamed so memory does not grow with the file.

Chinese Excel saves "CSV" in GBK unless the user picks "CSV UTF-8"; Salesforce and HubSpot export
UTF-8; Excel's "Unicode text" is UTF-16 with tabs. All of them are read without the user choosing
an encoding. Workbooks in Excel 97–2003's format (.xls) are still what WPS, older Excel and many
Chinese systems' exports write: they are read as they are, not sent back to be saved again. A file
that is none of them is refused at upload, naming the problem.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_BYTES = 200 * 1024 * 1024
HEADER_SEARCH_ROWS = 10  # a title row such as 「2024年展会客户名单」 may sit above the headers
_BLOCK = 1024 * 1024
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls, and password-protected .xls and .xlsx
_BINARY_MAGICS = (b"%PDF", b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"\x1f\x8b", b"Rar!", b"7z\xbc\xaf")

# a file that begins (after a BOM and blanks) with <html, <table, <head, <meta, <?xml or <!DOCTYPE
_MARKUP = re.compile(rb"^(?:\xef\xbb\xbf)?\s*<(?:html|table|\?xml|!doctype|head|meta)\b", re.IGNORECASE)

csv.field_size_limit(16 * 1024 * 1024)  # a long 需求 cell is not an attack; the 200 MB cap is the limit


class ImportFileError(Exception):
    """A file that cannot be imported as it is; the message says why and what to do, and
    `status` is the HTTP status that fits (400 unreadable, 413 too large, 415 wrong type)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class FileShape:
    format: str  # csv | xlsx | xls
    encoding: str
    delimiter: str
    header_row: int
    headers: list[str]
    rows_total: int


def size_check(size: int) -> None:
    if size == 0:
        raise ImportFileError("the file is empty")
    if size > MAX_BYTES:
        raise ImportFileError(
            f"the file is {size / 1024 / 1024:.0f} MB; the limit is {MAX_BYTES // 1024 // 1024} MB — "
            "split it into several files",
            status=413,
        )


def file_inspect(path: Path, *, name: str, size: int) -> FileShape:
    """Everything needed to read the file, found by reading it; raises ImportFileError."""
    size_check(size)
    with path.open("rb") as handle:
        head = handle.read(64 * 1024)
    lowered = name.lower()
    if head.startswith(_OLE_MAGIC):  # Excel 97–2003, or a workbook with a password
        return _xls_inspect(path)
    if head.startswith(_ZIP_MAGIC):
        return _xlsx_inspect(path)
    if _MARKUP.match(head):
        # many systems' "Excel export" is a web page or Excel 2003's XML named .xls, which Excel opens
        raise ImportFileError(
            "this file is a web page or XML that Excel can open, not a workbook: open it in Excel or "
            "WPS and save it as .xlsx or CSV UTF-8",
            status=415,
        )
    if lowered.endswith((".xlsx", ".xlsm")):
        raise ImportFileError("the file is named .xlsx but is not an Excel workbook", status=415)
    if head.startswith(_BINARY_MAGICS) or lowered.endswith((".pdf", ".doc", ".docx", ".png", ".jpg", ".zip")):
        raise ImportFileError("only CSV and Excel (.xlsx, .xls) files can be imported", status=415)
    return _csv_inspect(path, head)


# ---- CSV ------------------------------------------------------------------------------------


def _csv_inspect(path: Path, head: bytes) -> FileShape:
    encoding = _encoding_detect(path, head)
    delimiter = _delimiter_guess(path, encoding)
    header_row, headers = _header_find(_csv_records(path, encoding, delimiter))
    rows_total = sum(1 for _ in _data_rows(_csv_records(path, encoding, delimiter), header_row, len(headers)))
    if rows_total == 0:
        raise ImportFileError("the file has a header row but no data rows")
    return FileShape("csv", encoding, delimiter, header_row, headers, rows_total)


def _encoding_detect(path: Path, head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in head[:8192]:
        raise ImportFileError(
            "this is not a text file: only CSV and Excel (.xlsx, .xls) files can be imported", 415
        )
    utf8_error = _decode_error(path, "utf-8")
    if utf8_error is None:
        return "utf-8"
    if _decode_error(path, "gb18030") is None:
        return "gb18030"  # a superset of GBK and GB2312: what Chinese Excel writes as "CSV"
    raise ImportFileError(
        f"the file is neither UTF-8 nor GBK/GB18030 text ({utf8_error}); save it from Excel as "
        '"CSV UTF-8" or as .xlsx'
    )


def _decode_error(path: Path, encoding: str) -> str | None:
    """None if the whole file decodes, else where it fails. Decoding is ~1 GB/s for UTF-8, so
    checking all of it costs less than finding the problem at row 800,000 of a running import."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    offset = 0
    with path.open("rb") as handle:
        while True:
            block = handle.read(_BLOCK)
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                return f"byte {offset + exc.start} is not valid {encoding}"
            if not block:
                return None
            offset += len(block)


def _delimiter_guess(path: Path, encoding: str) -> str:
    """Comma, semicolon (European Excel) or tab (Excel's "Unicode text"): the one the first lines
    (a title row above the headers included) hold most of in one line."""
    best = {",": 0, "\t": 0, ";": 0}
    with path.open(encoding=encoding, newline="") as text:
        for line in itertools.islice((line for line in text if line.strip()), HEADER_SEARCH_ROWS):
            for delimiter in best:
                best[delimiter] = max(best[delimiter], line.count(delimiter))
    winner = max(best, key=lambda d: best[d])
    return winner if best[winner] else ","


def _without_nul(lines: Iterable[str]) -> Iterator[str]:
    # PostgreSQL cannot store NUL in text; a stray one in a cell is noise, not data.
    for line in lines:
        yield line.replace("\x00", "") if "\x00" in line else line


def _csv_records(path: Path, encoding: str, delimiter: str) -> Iterator[list[str]]:
    with path.open(encoding=encoding, newline="") as text:
        yield from csv.reader(_without_nul(text), delimiter=delimiter)


# ---- XLSX -----------------------------------------------------------------------------------


def _workbook_open(path: Path) -> Any:
    import openpyxl

    try:
        return openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile, KeyError, XML and its own errors for bad files
        raise ImportFileError(f"not a readable Excel (.xlsx) workbook: {exc}", status=415) from exc


def _cell_text(value: Any) -> str:
    """A cell as the text the user sees: 13800138000 (a number cell), not 13800138000.0."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _workbook_rows(rows: Iterator[list[str]], close: Callable[[], None]) -> Iterator[list[str]]:
    """A workbook's rows as its reader gives them: whatever goes wrong on the way is the file's
    fault, said so; the workbook is closed after, read to the end or not."""
    try:
        yield from rows
    except ImportFileError:
        raise
    except Exception as exc:  # the readers raise zipfile, XML, BIFF and struct errors for bad files
        raise ImportFileError(f"the Excel workbook cannot be read: {exc}", status=415) from exc
    finally:
        close()


def _xlsx_records(path: Path) -> Iterator[list[str]]:
    workbook = _workbook_open(path)

    def rows() -> Iterator[list[str]]:
        sheet = workbook.active or workbook.worksheets[0]
        for values in sheet.iter_rows(values_only=True):
            yield [_cell_text(value) for value in values]

    return _workbook_rows(rows(), workbook.close)


def _xlsx_inspect(path: Path) -> FileShape:
    """The rows are counted from the size the sheet states, not by reading them: openpyxl reads
    some 50,000 rows a second, too slow for an upload to wait on. Blank rows count until the run
    has the exact number."""
    header_row, headers = _header_find(_xlsx_records(path))
    workbook = _workbook_open(path)
    try:
        sheet = workbook.active or workbook.worksheets[0]
        stated = getattr(sheet, "max_row", None)
    finally:
        workbook.close()
    if stated is None:  # a workbook written without its dimension: count
        rows_total = sum(1 for _ in _data_rows(_xlsx_records(path), header_row, len(headers)))
    else:
        rows_total = max(stated - header_row, 0)
    if rows_total == 0:
        raise ImportFileError("the workbook has a header row but no data rows")
    return FileShape("xlsx", "", "", header_row, headers, rows_total)


# ---- XLS (Excel 97–2003) --------------------------------------------------------------------

_LOCKED_WORKBOOK = (
    "the workbook has a password: open it in Excel or WPS, remove the password and save it again "
    "(as .xlsx, .xls or CSV UTF-8)"
)


def _xls_open(path: Path) -> Any:
    """The workbook, its sheets read when asked for. A password-protected .xlsx is an encrypted
    package in the same container as an .xls: xlrd finds no workbook in it."""
    import xlrd

    try:
        return xlrd.open_workbook(str(path), on_demand=True)
    except Exception as exc:  # xlrd raises its own, its container reader's and struct errors for bad files
        if "encrypted" in str(exc).lower() or "can't find workbook" in str(exc).lower():
            raise ImportFileError(_LOCKED_WORKBOOK, status=415) from exc
        raise ImportFileError(f"not a readable Excel 97–2003 (.xls) workbook: {exc}", status=415) from exc


def _xls_sheet(book: Any) -> Any:
    """The sheet the workbook opens on (what openpyxl calls the active one), else the first visible
    one, else the first."""
    first_visible = None
    for index in range(book.nsheets):
        sheet = book.sheet_by_index(index)
        if sheet.sheet_visible:
            return sheet
        if first_visible is None and sheet.visibility == 0:
            first_visible = sheet
        else:
            book.unload_sheet(index)
    return first_visible or book.sheet_by_index(0)


def _xls_cell_text(cell: Any, datemode: int) -> str:
    """An .xls cell as `_cell_text` gives an .xlsx one: a date as the date (the file stores a
    number of days), TRUE/FALSE, an error as Excel shows it (#N/A)."""
    import xlrd

    kind, value = cell.ctype, cell.value
    if kind in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
        return ""
    if kind == xlrd.XL_CELL_DATE:
        try:
            if 0 <= value < 1:  # a time of day alone, as openpyxl reads it
                return _cell_text(dt.time(*xlrd.xldate.xldate_as_tuple(value, datemode)[3:]))
            return _cell_text(xlrd.xldate.xldate_as_datetime(value, datemode))
        except (ValueError, OverflowError, xlrd.xldate.XLDateError):
            return _cell_text(value)  # a number formatted as a date that no calendar has
    if kind == xlrd.XL_CELL_BOOLEAN:
        return _cell_text(bool(value))
    if kind == xlrd.XL_CELL_ERROR:
        return xlrd.error_text_from_code.get(value, "")
    return _cell_text(value)


def _xls_records(path: Path) -> Iterator[list[str]]:
    """The rows of the workbook's sheet. An .xls holds at most 65,536 rows a sheet and xlrd reads a
    sheet whole: memory stays bounded without streaming."""
    book = _xls_open(path)

    def rows() -> Iterator[list[str]]:
        sheet = _xls_sheet(book)
        datemode = book.datemode
        for index in range(sheet.nrows):
            yield [_xls_cell_text(cell, datemode) for cell in sheet.row(index)]

    return _workbook_rows(rows(), book.release_resources)


def _xls_inspect(path: Path) -> FileShape:
    """Read once: the sheet is in memory anyway, so its rows are counted exactly."""
    records = list(_xls_records(path))
    header_row, headers = _header_find(iter(records))
    rows_total = sum(1 for _ in _data_rows(iter(records), header_row, len(headers)))
    if rows_total == 0:
        raise ImportFileError("the workbook has a header row but no data rows")
    return FileShape("xls", "", "", header_row, headers, rows_total)


# ---- both -----------------------------------------------------------------------------------


def _header_find(records: Iterator[list[str]]) -> tuple[int, list[str]]:
    """The first of the first rows with at least two filled cells (a lone title above the
    table is skipped), its cells stripped; empty headers are named by their column."""
    first_filled: tuple[int, list[str]] | None = None
    try:
        for number, cells in enumerate(records, start=1):
            if number > HEADER_SEARCH_ROWS:
                break
            filled = [cell for cell in cells if cell.strip()]
            if not filled:
                continue
            if first_filled is None:
                first_filled = (number, cells)
            if len(filled) >= 2:
                return number, _headers_clean(cells)
    except csv.Error as exc:
        raise ImportFileError(f"the CSV cannot be read: {exc}") from exc
    finally:
        close = getattr(records, "close", None)
        if close is not None:
            close()
    if first_filled is None:
        raise ImportFileError("the file has no header row: it is empty")
    return first_filled[0], _headers_clean(first_filled[1])


def _headers_clean(cells: list[str]) -> list[str]:
    while cells and not cells[-1].strip():
        cells = cells[:-1]
    return [cell.strip().lstrip("\ufeff") or f"(第{index}列)" for index, cell in enumerate(cells, start=1)]


def _data_rows(records: Iterator[list[str]], header_row: int, width: int) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells padded or cut to the header's width) for each non-blank row after the
    headers. The row number is the spreadsheet's (headers = header_row), blank rows included."""
    try:
        for number, cells in enumerate(records, start=1):
            if number <= header_row:
                continue
            if len(cells) != width:
                cells = cells[:width] if len(cells) > width else cells + [""] * (width - len(cells))
            for cell in cells:
                if cell and not cell.isspace():
                    yield number, cells
                    break
    except csv.Error as exc:
        raise ImportFileError(f"the CSV cannot be read: {exc}") from exc
    except UnicodeDecodeError as exc:  # checked whole at upload: the file changed since
        raise ImportFileError(
            f"the file is no longer readable as {exc.encoding} ({exc.reason}): was it changed after "
            "the upload? Upload it again"
        ) from exc


def rows_read(path: Path, shape: FileShape | Any, *, skip: int = 0) -> Iterator[tuple[int, list[str]]]:
    """The data rows of a file inspected before (a FileShape or an ImportJob), after `skip` rows
    already done."""
    if shape.format == "xlsx":
        records = _xlsx_records(path)
    elif shape.format == "xls":
        records = _xls_records(path)
    else:
        records = _csv_records(path, shape.encoding, shape.delimiter)
    rows = _data_rows(records, shape.header_row, len(shape.headers))
    for _ in range(skip):
        if next(rows, None) is None:
            return
    yield from rows


def rows_head(path: Path, shape: FileShape | Any, count: int) -> list[tuple[int, list[str]]]:
    rows = rows_read(path, shape)
    try:
        return [row for _, row in zip(range(count), rows, strict=False)]
    finally:
        rows.close()
