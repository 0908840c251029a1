"""Tables of people as the offices keep them: CSV (UTF-8 or GB18030, as Excel saves it) or .xlsx.

Rows come back with the line number a person sees in Excel (the header is line 1), cells as
text: integral numbers without ".0" (a phone typed into a number cell), blanks as "".
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from command.errors import DomainError

FORMATS = (".csv", ".xlsx")


@dataclass(frozen=True)
class Table:
    """A header row and the rows under it (blank rows left out)."""

    headers: list[str]
    rows: list[tuple[int, list[str]]]  # (line number, cells as text, as long as the header)


def check_format(path: Path) -> str:
    """The file's format from its name (.csv or .xlsx), or a DomainError naming both."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise DomainError("invalid_field", f"{path}: a users file is .csv or .xlsx "
                                           f"(got {suffix or 'no extension'})", "file")
    return suffix


def read(path: Path) -> Table:
    """Read a .csv or .xlsx file (the first sheet) into a Table."""
    path = Path(path)
    if check_format(path) == ".xlsx":
        return _read_xlsx(path)
    return _read_csv(path)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value).replace("\u3000", " ").strip()


def _table(lines) -> Table:
    headers: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    for number, cells in lines:
        cells = [_text(c) for c in cells]
        if headers is None:
            if not any(cells):
                continue  # blank lines above the header
            headers = cells
            while headers and not headers[-1]:
                headers.pop()
            continue
        if not any(cells):
            continue
        cells = (cells + [""] * len(headers))[:max(len(headers), len(cells))]
        rows.append((number, cells))
    if headers is None:
        raise DomainError("invalid_field", "the file is empty: no header row", "file")
    return Table(headers, rows)


def _decode(data: bytes) -> str:
    """UTF-8 (with or without a BOM), else GB18030: what Excel on a Chinese desktop writes."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("gb18030")
        except UnicodeDecodeError:
            raise DomainError("invalid_field", "the CSV file is neither UTF-8 nor GB18030 text",
                              "file") from None


def _read_csv(path: Path) -> Table:
    text = _decode(path.read_bytes())
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)

    def lines():
        start = 1
        for cells in reader:
            yield start, cells
            start = reader.line_num + 1

    return _table(lines())


def _read_xlsx(path: Path) -> Table:
    import zipfile

    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise DomainError("invalid_field", f"{path.name} is not an .xlsx workbook ({exc})",
                          "file") from None
    try:
        sheet = book.worksheets[0]
        # from row 1, empty rows included: the numbers are Excel's row numbers
        return _table(enumerate(sheet.iter_rows(min_row=1, values_only=True), start=1))
    finally:
        book.close()


def write(path: Path, headers: list[str], rows: list[list[str]], *, mode: int = 0o644) -> Path:
    """Write a new .csv (UTF-8 with a BOM, for Excel) or .xlsx; refuse to overwrite a file."""
    path = Path(path)
    suffix = check_format(path)
    if suffix == ".xlsx":
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet("users")
        sheet.append(headers)
        for row in rows:
            sheet.append(row)
        buffer = io.BytesIO()
        book.save(buffer)
        data = buffer.getvalue()
    else:
        out = io.StringIO(newline="")
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(headers)
        writer.writerows(rows)
        data = ("\ufeff" + out.getvalue()).encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path
