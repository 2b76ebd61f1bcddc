"""The one exporter contract (after pretix's exporters).

An exporter takes the viewer and a form of parameters and gives a filename, a content
type and a stream of bytes. The download views stream it to the browser; the worker
writes the same stream to Django storage for large exports. Rows come from a
server-side cursor (``QuerySet.iterator``), CSV is written row by row and XLSX through
openpyxl's write-only workbook, so memory stays flat however many rows there are.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from django import forms
from django.conf import settings
from django.utils import timezone

from portal.errors import Invalid
from portal.redaction import redact

FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_XLSX_CHUNK = 64 * 1024


@dataclass(frozen=True)
class ExportFile:
    filename: str
    content_type: str
    stream: Iterable[bytes]


Progress = Callable[[int], None]


class Exporter:
    """Subclasses name themselves, their form, their columns and their rows."""

    identifier: ClassVar[str]
    verbose_name: ClassVar[str]
    form_class: ClassVar[type[forms.Form]]
    # Procedure output and free text pass through the redaction patterns; the audit
    # trail does not, so every exported event still matches its hash.
    redacting: ClassVar[bool] = True

    def __init__(self, *, user, data) -> None:
        self.user = user
        self.form = self.form_class(data, user=user)
        if not self.form.is_valid():
            raise Invalid(f"These filters were not understood: {form_errors(self.form)}")
        self.params: dict[str, Any] = self.form.cleaned_data

    # --- what a subclass provides --------------------------------------------------
    def headers(self) -> list[str]:
        raise NotImplementedError

    def rows(self) -> Iterator[list[Any]]:
        raise NotImplementedError

    def count(self) -> int:
        raise NotImplementedError

    def stem(self) -> str:
        return self.identifier

    # --- the contract ---------------------------------------------------------------
    def filename(self, fmt: str) -> str:
        return f"{self.stem()}-{timezone.now():%Y%m%d-%H%M%S}.{fmt}"

    def render(self, fmt: str, *, progress: Progress | None = None) -> ExportFile:
        if fmt not in FORMATS:
            raise Invalid(f"Choose csv or xlsx, not {fmt!r}.")
        writer = _csv_stream if fmt == "csv" else _xlsx_stream
        return ExportFile(
            filename=self.filename(fmt),
            content_type=FORMATS[fmt],
            stream=writer(self.headers(), self._counted(progress), redacting=self.redacting),
        )

    def _counted(self, progress: Progress | None) -> Iterator[list[Any]]:
        every = settings.EXPORT_CHUNK_ROWS
        done = 0
        for row in self.rows():
            yield row
            done += 1
            if progress is not None and done % every == 0:
                progress(done)
        if progress is not None:
            progress(done)


def form_errors(form: forms.Form) -> str:
    parts = []
    for name, errors in form.errors.items():
        label = form.fields[name].label if name in form.fields else "Filters"
        parts.append(f"{label or name}: {' '.join(errors)}")
    return "; ".join(parts)


def text(value: Any, *, redacting: bool = True) -> str:
    """One cell as text: times in UTC ISO 8601, secrets redacted."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "yes" if value else "no"
    return redact(str(value)) if redacting else str(value)


def _safe_csv(value: Any, redacting: bool = True) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    cell = text(value, redacting=redacting)
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


class _Line:
    """A file-like object that hands back what csv.writer wrote for one row."""

    def write(self, value: str) -> str:
        return value


def _csv_stream(
    headers: list[str], rows: Iterator[list[Any]], *, redacting: bool
) -> Iterator[bytes]:
    writer = csv.writer(_Line())
    # A BOM so spreadsheet programs read the file as UTF-8.
    yield ("\ufeff" + writer.writerow(headers)).encode("utf-8")
    for row in rows:
        yield writer.writerow([_safe_csv(v, redacting) for v in row]).encode("utf-8")


def _xlsx_value(value: Any, redacting: bool) -> Any:
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return ILLEGAL_CHARACTERS_RE.sub("", text(value, redacting=redacting))[:32_767]


def _xlsx_stream(
    headers: list[str], rows: Iterator[list[Any]], *, redacting: bool
) -> Iterator[bytes]:
    """openpyxl's write-only workbook keeps one row in memory; the zip it builds goes
    to a temporary file, which is then streamed in chunks and removed."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Export")
    sheet.append(headers)
    for row in rows:
        cells = []
        for value in row:
            cell = WriteOnlyCell(sheet, value=_xlsx_value(value, redacting))
            if isinstance(cell.value, str):
                cell.data_type = "s"  # never a formula, whatever the text starts with
            cells.append(cell)
        sheet.append(cells)
    with tempfile.TemporaryFile(suffix=".xlsx") as spool:
        workbook.save(spool)
        spool.seek(0)
        while chunk := spool.read(_XLSX_CHUNK):
            yield chunk


def write_csv(headers: list[str], rows: Iterable[list[Any]], *, redacting: bool = True) -> bytes:
    """A small CSV (evidence pack sections, KPI tables) in one piece."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(headers)
    for row in rows:
        writer.writerow([_safe_csv(v, redacting) for v in row])
    return buffer.getvalue().encode("utf-8")
