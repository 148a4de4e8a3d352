"""Reading a table file, CSV or Parquet, into a :class:`SourceTable` of text: every row that cannot be read
is reported by its line number (a :class:`~prodcat.catalog.schema.RowIssue`), never silently dropped.

The catalogue loaders (:mod:`prodcat.catalog.loaders`) build the canonical frame from such tables; this module
knows files, encodings, quoting and column types, nothing of catalogue formats.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from prodcat.catalog import CatalogFormatError
from prodcat.catalog.schema import SPACES, RowIssue
from prodcat.image.decode import sniff_image_type


@dataclass
class SourceTable:
    """A source table as strings ("" when empty), indexed by the 1-based source line of each row."""

    frame: pd.DataFrame
    issues: list[RowIssue]
    name: str


def first_column(names: Sequence[str]) -> str | None:
    """The first of a header's column ``names``: the id column of most tables."""
    return names[0] if names else None


def read_csv_table(
    path: Path, delimiter: str | None = None, id_column: Callable[[Sequence[str]], str | None] = first_column
) -> SourceTable:
    """Read a CSV with the stdlib reader in strict mode, record by record.

    Why not ``pandas.read_csv``: its C engine aborts on an unclosed quote and numbers bad rows by
    record rather than by line, and its ``on_bad_lines`` callable does not receive the line number.
    The csv module reports both, and a strict-mode error only loses the offending record.

    A skipped row's issue names its product by the field of the column ``id_column`` picks among the header's
    names (stripped, made unique), as a hint: none when it picks no column of the header.
    """
    text_lines, legacy = _open_text(path)
    delimiter = delimiter or sniff_delimiter(path)
    # the csv module's default limit (131,072 characters a field) would skip a long description's product and
    # resume reading in the middle of its field, turning the field's later lines into products
    limit = csv.field_size_limit(sys.maxsize)
    try:
        return _read_records(text_lines, delimiter, legacy, path, id_column)
    finally:
        csv.field_size_limit(limit)


def _read_records(
    text_lines: list[str],
    delimiter: str,
    legacy: list[int],
    path: Path,
    id_column: Callable[[Sequence[str]], str | None],
) -> SourceTable:
    """The records of an opened CSV (its ``text_lines``, those at the positions ``legacy`` read as Windows-1252:
    :func:`_open_text`) as a :class:`SourceTable`; a bad record is skipped and reported, named by its field of the
    column ``id_column`` picks (:func:`read_csv_table`).

    A quote that opens a field and is never closed (``A6,"12 inch mug,...``) makes the reader take every
    following line as part of that field, up to the next quote or the end of the file: the record that
    fails then spans many lines, most of them other products. Only its first line (where the quote opened)
    is skipped; reading resumes on the line after it, so one stray quote never costs the rest of the file.
    """
    source = _Lines(text_lines)
    with_nul = _drop_nul(source.lines)
    reader = csv.reader(source, delimiter=delimiter, strict=True)
    header = _header(reader, source, path)
    # "product_id, title, image": a space after each comma, as people type them, is no part of the names
    names = _unique_names([name.strip() for name in header])
    id_at = _id_position(names, id_column(names))
    records: list[list[str]] = []
    starts: list[int] = []  # the position of each product's first line, numbered once the reading is done
    begun: list[int] = []  # the position of each record's first line, read or not
    # each skipped row: its first line's position, the last one's for bad quoting (None: a wrong count of fields),
    # the problem and the fields that may hold its id (_id_candidates)
    skipped: list[tuple[int, int | None, str, list[tuple[str, str | None]]]] = []
    while True:
        line_start = source.position + 1
        begun.append(line_start)
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            line_end = source.position
            if line_end != line_start:  # an unclosed quote ran on: the lines it swallowed are read again
                source.position = line_start
            # the line's fields from its edge to the id, as a hint: none once a quote (which may hold a separator) is
            # among them, nor from its end where the record ran on past it (the line may end inside a quoted field)
            ran_on = line_end != line_start and id_at is not None and id_at < 0
            fields = [] if ran_on else _fields_to(source.lines[line_start - 1].rstrip("\r\n"), delimiter, id_at)
            candidates = _id_candidates(fields, len(fields), id_at) if not any('"' in f for f in fields) else []
            skipped.append((line_start, line_end, f"bad quoting ({error})", candidates))
            continue
        if _blank(record):  # as above the header: no product, nothing skipped
            continue
        if len(record) != len(header):
            problem = f"{len(record)} fields where the header has {len(header)} (unquoted separator or quote?)"
            candidates = _id_candidates(record, len(names), _parsed_id_position(len(record), len(names), id_at))
            skipped.append((line_start, None, problem, candidates))
            continue
        records.append(record)
        starts.append(line_start)
    shown = _shown_line_numbers(source.lines, begun)
    issues = _lines_issue(legacy, shown, path, "not valid UTF-8", "; read as Windows-1252")
    issues += _lines_issue(with_nul, shown, path, "hold NUL bytes", ", removed (a damaged copy?)")
    # only where a skipped row's id may be one of several of its fields
    shapes = _id_shapes(records, id_at) if any(len(row[3]) > 1 for row in skipped) else (set(), set())
    issues += [
        _skipped_row(first, last, problem, _likeliest_id(candidates, *shapes), shown, path)
        for first, last, problem, candidates in skipped
    ]
    lines = [shown[start - 1] for start in starts]
    # one block of cells, not a column each: a header of 100,000 names took 2 s to become a frame
    cells = np.array(records, dtype=object).reshape(len(records), len(names))
    frame = pd.DataFrame(cells, columns=names, index=pd.Index(lines, name="line"), dtype=object)
    if not records:
        frame = pd.DataFrame({c: pd.Series(dtype=object) for c in frame.columns}, index=pd.Index([], name="line"))
    return SourceTable(frame, issues, path.name)


def _skipped_row(
    first: int, last: int | None, problem: str, product: str | None, shown: list[int], path: Path
) -> RowIssue:
    """The issue of a row skipped from the line at position ``first`` (``shown``: the lines' numbers): for bad quoting
    read up to the one at ``last``, or (``last`` None) for a wrong count of fields."""
    if last is None:
        return RowIssue(shown[first - 1], "row", f"{path.name}: {problem}; row skipped", product)
    if last == first:
        what = f"line {shown[first - 1]}; row skipped"
    else:
        what = (
            f"line {shown[first - 1]}, whose quoted field ran on to line {shown[last - 1]} (an unclosed quote?); "
            f"line {shown[first - 1]} skipped, the lines after it read again"
        )
    return RowIssue(shown[first - 1], "row", f"{path.name}: {problem} in {what}", product)


def _id_position(names: Sequence[str], id_name: str | None) -> int | None:
    """Where a skipped row's id is read, among the header's ``names``: the id column's index counted from the edge of
    the row nearer to it, from the end (negative) when fewer columns follow it than come before it. A row is skipped
    for a separator or a quote too many or too few, mostly in a free text; counted across the text columns before
    it, the id of Rakuten's ``designation,description,productid,imageid`` was another field of a row with a comma
    too many in its description, and a row with a stray quote in its description was named by none."""
    if id_name is None or id_name not in names:  # names are strings: None was never among them
        return None
    at = list(names).index(id_name)
    after = len(names) - 1 - at
    return -(after + 1) if after < at else at


def _parsed_id_position(fields: int, columns: int, at: int | None) -> int | None:
    """Where the id is read in a parsed row of ``fields`` fields under a header of ``columns``: at ``at``
    (:func:`_id_position`), but counted from the row's start when it has fewer fields than the header. A free text
    gains a separator, it does not lose one: a row with fewer fields was cut short or lacks its last cells, and
    counted from its end ``cup,blue cup,sku-2`` under ``title,description,product_id,price`` was named 'blue cup'."""
    return at + columns if at is not None and at < 0 and fields < columns else at


def _fields_to(line: str, delimiter: str, at: int | None) -> list[str]:
    """The fields of ``line`` split from its edge up to the id at ``at`` (:func:`_id_position`), the rest left whole."""
    if at is None:
        return []
    if at >= 0:
        return line.split(delimiter, at + 1)[: at + 1]
    return line.rsplit(delimiter, -at)[at:]


def _id_candidates(fields: Sequence[str], columns: int, at: int | None) -> list[tuple[str, str | None]]:
    """The fields of a skipped row (``fields``, stripped) that may hold its id, each with the field after it (``None``
    at the row's end), likeliest first: the one at the id column's position ``at`` (:func:`_parsed_id_position`),
    none when it has no such field; then, in a row with more fields than the header's ``columns``, those its extra
    fields may have pushed the id to, from that one away. An extra separator stands mostly in a free text, on the side
    of the id with more columns (which ``at`` counts from the other edge), but not always: a trailing comma after
    ``title,description,product_id,price``, or a field too many after the id of Rakuten's
    ``designation,description,productid,imageid``, puts it on the other side."""
    if at is None or not -len(fields) <= at < len(fields):
        return []
    extra = len(fields) - columns
    if extra <= 0:
        positions = [at % len(fields)]
    else:  # the id's field if every extra one follows it, and on; or if every extra one precedes it, and back
        first = at if at >= 0 else columns + at
        positions = [first + shift for shift in (range(extra + 1) if at >= 0 else range(extra, -1, -1))]
    return [(fields[k].strip(), fields[k + 1].strip() if k + 1 < len(fields) else None) for k in positions]


def _id_shapes(records: list[list[str]], at: int | None) -> tuple[set[str], set[str]]:
    """The :func:`_shape` of each id of the ``records`` read (at ``at``, :func:`_id_position`), and of each value of
    the column after it (none when the id's is the last)."""
    if at is None or not records:
        return set(), set()
    column = at % len(records[0])
    after = {_shape(record[column + 1]) for record in records} if column + 1 < len(records[0]) else set()
    return {_shape(record[column]) for record in records}, after


def _likeliest_id(candidates: Sequence[tuple[str, str | None]], ids: set[str], after: set[str]) -> str | None:
    """Of a skipped row's :func:`_id_candidates`, the one whose :func:`_shape` is one of ``ids`` (the ids read's) and
    the field after it of ``after`` (the next column's), the id counting more; the first among equals; ``None`` for
    none, or a blank one. Named 'sku-3', where the ids read are 'sku-1', 'sku-2', not by the price '5.00' past a
    trailing comma, nor by 'blue' (a comma in the text before the id); Rakuten's productid, not its imageid, past a
    trailing comma, where both are numbers."""

    def fit(candidate: tuple[str, str | None]) -> int:
        field, following = candidate
        return 2 * (bool(field) and _shape(field) in ids) + (following is not None and _shape(following) in after)

    return (max(candidates, key=fit)[0] or None) if candidates else None


_DIGITS = re.compile(r"\d+")
_LETTERS = re.compile(r"[^\W\d_]+")


def _shape(text: str) -> str:
    """The shape of a value: each run of digits a 9, each run of letters an a ('sku-12' and 'SKU-3' are 'a-9')."""
    return _LETTERS.sub("a", _DIGITS.sub("9", text.strip()))


def _header(reader: Iterator[list[str]], source: _Lines, path: Path) -> list[str]:
    """The header record of the CSV ``path`` read by ``reader`` (over ``source``): the first that is not blank, or the
    one after Excel's separator hint; ``CatalogFormatError`` when there is none or its quoting is bad."""
    try:
        header = _filled_record(reader)
        if separator_hint(source.lines[source.position - 1]):  # Excel's line above the header, as Excel reads it
            header = _filled_record(reader)
    except StopIteration:
        raise CatalogFormatError(f"{path}: the file is empty; expected a header line") from None
    except csv.Error as error:  # without a header, no line can be read: the whole file is refused, saying why
        raise CatalogFormatError(
            f"{path}: the header (line 1) has bad quoting ({error}); every column name must be whole, "
            'a quote inside a quoted name doubled ("")'
        ) from None
    return header


def _blank(record: list[str]) -> bool:
    """Whether ``record`` holds nothing but spaces: a blank line (empty, or of spaces and tabs) or a row of empty
    fields (``,,,``: a spreadsheet's empty row saved as CSV)."""
    return not "".join(record).strip()


def _filled_record(reader: Iterator[list[str]]) -> list[str]:
    """The next record of ``reader`` that is not blank: blank lines above the header are skipped, as pandas does."""
    record = next(reader)
    while _blank(record):
        record = next(reader)
    return record


#: Excel's separator hint, a line such as ``sep=;`` above the header (exports meant for Excel where lists take
#: semicolons): it names the separator, and is no part of the table
_SEPARATOR_HINT = re.compile(r"sep=(.)")


def separator_hint(line: str) -> str | None:
    """The separator a line of Excel's ``sep=X`` hint names, or ``None``: not such a line."""
    match = _SEPARATOR_HINT.fullmatch(line.strip(" \r\n"))
    return match[1] if match else None


def _shown_line_numbers(lines: list[str], record_starts: list[int]) -> list[int]:
    """The number of each of ``lines`` (cut at \\n, \\r\\n and a lone \\r, as the csv reader takes them) as grep -n,
    sed and editors number it: a lone \\r ends a line only in a file without \\n (Excel's "CSV (Macintosh)"); in
    others it is a character of a text (56 of Flipkart's descriptions hold one), and counting it shifted every
    later product's line. But where it ends a record, outside quotes (``record_starts``: the 1-based position of the
    line each record began on), the csv reader, pandas and spreadsheets start a row after it: so does the numbering,
    each record's line its own (two records on one line were one label, and a row issue naming it crashed)."""
    ends = [line.endswith("\n") for line in lines]
    if not any(ends):
        return list(range(1, len(lines) + 1))
    for start in record_starts:
        if 1 < start <= len(lines):
            ends[start - 2] = True
    return list(itertools.accumulate(ends[:-1], initial=1))


def _drop_nul(lines: list[str]) -> list[int]:
    """Remove the NUL characters of ``lines`` in place (a damaged copy: no text holds them, and in an id or a
    column name they would go unseen); the positions (0-based) of the lines that held some."""
    holding = [index for index, line in enumerate(lines) if "\x00" in line]
    for index in holding:
        lines[index] = lines[index].replace("\x00", "")
    return holding


def _lines_issue(positions: list[int], shown: list[int], path: Path, what: str, done: str) -> list[RowIssue]:
    """One issue naming the lines at the (0-based) ``positions`` by their numbers (``shown``), given once the records
    are read (:func:`_shown_line_numbers`): "N line(s) ``what`` (numbers)``done``"; none without a position."""
    found = sorted({shown[index] for index in positions})
    if not found:
        return []
    return [RowIssue(found[0], "file", f"{path.name}: {len(found)} line(s) {what} ({_line_numbers(found)}){done}")]


def _line_numbers(numbers: list[int]) -> str:
    """The first few of ``numbers``, for a message."""
    return ", ".join(map(str, numbers[:5])) + (", ..." if len(numbers) > 5 else "")


class _Lines:
    """The lines of a text for :func:`csv.reader`, one at a time; ``position`` is the number of lines handed
    out so far (the 1-based number of the last one), and setting it rewinds the reader to the line after."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.position = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.position >= len(self.lines):
            raise StopIteration
        self.position += 1
        return self.lines[self.position - 1]


#: the byte-order marks a UTF-16 table starts with (Excel's "Unicode text" export)
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def _open_text(path: Path) -> tuple[list[str], list[int]]:
    """The file's lines (:func:`_record_lines`): UTF-8, and line by line Windows-1252 where a line is not (a file
    pasted together from two exports must not garble its UTF-8 rows); and the (0-based) positions of the lines read
    so, to be numbered as the records are (:func:`_shown_line_numbers`, after a lone \\r ending a row one past
    grep -n's)."""
    raw = path.read_bytes()
    _refuse_binary(raw, path)
    if (encoding := text_encoding(raw)).startswith("utf-16"):
        try:
            return _record_lines(raw.decode(encoding)), []
        except UnicodeDecodeError as exc:
            raise CatalogFormatError(f"{path}: starts as UTF-16 but does not decode as such ({exc})") from None
    try:
        return _record_lines(raw.decode("utf-8-sig")), []
    except UnicodeDecodeError:
        pass
    lines, legacy = [], []
    # cut as _record_lines cuts the text: in UTF-8 and in Windows-1252 only the bytes \r and \n decode to \r and \n,
    # so these are the text's lines, and a row past a lone \r is read apart from the one before it on grep -n's line
    for position, line in enumerate(_RECORD_LINE_BYTES.findall(raw)):
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(line.decode("cp1252", errors="replace"))
            legacy.append(position)
    lines[0] = lines[0].removeprefix("\ufeff")  # a byte that is not UTF-8 makes one line at least
    return lines, legacy


#: a line as io.StringIO(text, newline="") cuts it, its end kept: at \n, \r\n or a lone \r
_RECORD_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")
#: the same, of bytes
_RECORD_LINE_BYTES = re.compile(_RECORD_LINE.pattern.encode())


def _record_lines(text: str) -> list[str]:
    """The lines of ``text``, each with its end, as ``io.StringIO(text, newline="").readlines()`` gives them: only
    \n, \r\n and a lone \r end one (str.splitlines would also cut at \x85 or \u2028 inside texts). Not through
    StringIO: it holds a copy of the text at 4 bytes a character, 490 MB at the peak for a 95 MB CSV with one
    non-ASCII character."""
    return _RECORD_LINE.findall(text)


def text_encoding(head: bytes) -> str:
    """The encoding of a text table starting with the bytes ``head``: UTF-16 by its byte-order mark, or without
    one (SQL Server's bcp -w, .NET's Encoding.Unicode) when every other byte of its start is zero, as in a
    header of ASCII names; else UTF-8, a byte-order mark skipped."""
    if head.startswith(_UTF16_BOMS):
        return "utf-16"
    start = head[: min(len(head), 128) // 2 * 2]
    even, odd = start[0::2], start[1::2]
    if len(start) >= 4 and not any(odd) and all(even):
        return "utf-16-le"
    if len(start) >= 4 and not any(even) and all(odd):
        return "utf-16-be"
    return "utf-8-sig"


#: the first bytes of the files most often given for a CSV by mistake, and what to do instead
_NOT_TEXT = (
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook?): save the sheet as CSV, or unzip it"),
    (b"\xd0\xcf\x11\xe0", "an Excel .xls workbook (or another Office file): save the sheet as CSV"),
    (b"PAR1", "a Parquet file: name it .parquet, or pass --format parquet"),
    (b"\x1f\x8b", "gzip-compressed: decompress it first"),
    (b"%PDF", "a PDF document, not a table"),
)


#: the start of a JSON export (an array of records or of columns, JSON lines), which no CSV header looks like
_JSON_START = re.compile(rb'(?:\xef\xbb\xbf)?\s*(?:\[\s*[{\["]|\{\s*")')


def _refuse_binary(raw: bytes, path: Path) -> None:
    """Refuse, naming what it is, a file that is no text table (a workbook, an archive, a photo, JSON): read as
    text its bytes would make one garbled column name and a message full of them."""
    found = next((what for magic, what in _NOT_TEXT if raw.startswith(magic)), None)
    if found and found.startswith("a Parquet") and not raw.endswith(b"PAR1"):
        found = None  # a header that happens to start with PAR1
    if _JSON_START.match(raw):
        found = "JSON: prodcat reads CSV, TSV or Parquet catalogues; convert it first (pandas.read_json)"
    kind = sniff_image_type(raw)
    # "BM" starts a bitmap, and also a header such as "BMW id,title": a bitmap's header holds zero bytes
    if kind is not None and (kind != "bmp" or b"\x00" in raw[:64]):
        found = f"an image ({kind.upper()}), not a table"  # no article to get wrong: "a AVIF"
    if not found and (share := _control_share(raw)) > 0.1:
        found = f"unknown binary data ({share:.0%} of its first bytes are control characters, which no text holds)"
    if found:
        raise CatalogFormatError(f"{path}: not a CSV file: its content is {found}")


def _control_share(raw: bytes, head: int = 4096) -> float:
    """The share of control bytes (other than tab, line breaks and form feed) in the first ``head`` bytes of a
    table that is not UTF-16 (whose ASCII characters hold zero bytes): a few in a damaged text, most in
    random data, an encrypted or compressed file (one in eight bytes)."""
    start = raw[:head]
    if not start or text_encoding(start).startswith("utf-16"):
        return 0.0
    controls = sum(1 for byte in start if (byte < 0x20 and byte not in b"\t\n\r\f") or byte == 0x7F)
    return controls / len(start)


def sniff_delimiter(path: Path) -> str:
    """The separator of a text table: the one Excel's ``sep=X`` line above the header names, tab for ``.tsv``,
    else the most frequent of ``, ; tab |`` in its header."""
    if hinted := separator_hint(next(iter(_filled_lines(path)), "")):
        return hinted
    if path.suffix.lower() == ".tsv":
        return "\t"
    header = header_line(path)
    counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
    return max(counts, key=counts.__getitem__) if any(counts.values()) else ","


def header_line(path: Path) -> str:
    """The first line of a text table that is not blank, after Excel's ``sep=X`` line if it has one, in its
    :func:`text_encoding`."""
    lines = _filled_lines(path)
    if lines and separator_hint(lines[0]):
        lines = lines[1:]
    return lines[0] if lines else ""


def _filled_lines(path: Path) -> list[str]:
    """The lines of the start of a text table that are not blank, in its :func:`text_encoding`."""
    with path.open("rb") as handle:
        head = handle.read(64 * 1024)
    encoding = text_encoding(head)
    # a cut at an odd byte leaves half a character at the end: replaced, and past the first lines anyway.
    # Lines end as the csv reader ends them: \n, \r\n, or \r alone (Excel's "CSV (Macintosh)"); blank lines
    # above the header are no part of it
    lines = _LINE_END.split(head.decode(encoding, errors="replace").replace("\x00", ""))
    return [line for line in lines if line.strip()]


_LINE_END = re.compile(r"\r\n?|\n")


def _unique_names(header: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    names = []
    for name in header:
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}.{seen[name] - 1}")
    return names


def read_parquet_table(path: Path) -> SourceTable:
    """A Parquet file's columns as they are typed (:func:`typed_columns_as_text` turns the mapped ones into text),
    indexed from 1 like a CSV's data lines."""
    import pyarrow.parquet as pq  # with pandas' Parquet reader

    try:
        names = pq.read_schema(path).names
        # a name twice is no table pandas reads: pyarrow's refusal printed the whole schema over a dozen lines
        if repeated := sorted({name for name in names if names.count(name) > 1}):
            raise CatalogFormatError(
                f"{path}: more than one column named {', '.join(map(repr, repeated))}: rename them (a CSV's are "
                "read as name, name.1, ...)"
            )
        # nullable dtypes: an integer id or code column with a gap must not become floats ("1.2e+16", "10.0")
        frame = pd.read_parquet(path, dtype_backend="numpy_nullable")
    except CatalogFormatError:
        raise
    except (ValueError, OSError) as exc:
        # pyarrow's ArrowInvalid (not Parquet, truncated, corrupt footer) and its IOError, an OSError without an errno
        # (a corrupt page: "Corrupt snappy compressed data.", "Couldn't deserialize thrift"); one with an errno is the
        # file's own (a failing disk), said by load_catalog. Its messages run over lines: one line, as every error
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        raise CatalogFormatError(f"{path}: not a readable Parquet file ({' '.join(str(exc).split())})") from None
    frame.index = pd.Index(np.arange(1, len(frame) + 1), name="line")
    return SourceTable(frame[~_empty_rows(frame)], [], path.name)


def _empty_rows(frame: pd.DataFrame) -> pd.Series:
    """The rows of a typed table with no value (missing, or blank text, in every column): a spreadsheet's empty
    row, no product, as a CSV's blank line is none."""
    filled = frame.notna()
    for name, column in frame.items():
        if column.dtype == object or pd.api.types.is_string_dtype(column):
            filled.loc[_blank_cells(column), name] = False
    return ~filled.any(axis=1)


def _blank_cells(column: pd.Series) -> np.ndarray:
    """Which cells of ``column`` are strings of nothing but whitespace (``str.strip`` leaves nothing), ``(n,)`` bool.
    Of pandas' Arrow-backed strings only those starting with whitespace, or empty, are made Python strings and
    stripped: turning a million of each column's values into Python strings took seconds and as many copies."""
    if isinstance(column.dtype, pd.StringDtype) and column.dtype.storage == "pyarrow":
        import pyarrow as pa
        import pyarrow.compute as pc

        first = pc.utf8_slice_codeunits(pa.array(column.array), 0, 1)
        may_be_blank = pc.or_(pc.equal(first, ""), pc.is_in(first, value_set=pa.array(list(SPACES))))
        at = np.flatnonzero(may_be_blank.fill_null(False).to_numpy(zero_copy_only=False))
        blank = np.zeros(len(column), dtype=bool)
        blank[at] = [not value.strip() for value in column.iloc[at].tolist()]
        return blank
    # object columns and pandas' Python-backed strings (the others, above): over a list, faster than Series.map
    return np.fromiter(
        (isinstance(value, str) and not value.strip() for value in column.tolist()), dtype=bool, count=len(column)
    )


def typed_columns_as_text(table: SourceTable, columns: dict[str, str | None]) -> list[RowIssue]:
    """Turn the typed Parquet columns mapped to ``columns`` (canonical name -> source column) into the text the
    CSV reader gives, in place, and report what could not be: numbers and dates are written out, bytes are
    decoded as UTF-8 (undecodable bytes replaced, and reported); bytes in the image column are a photo's
    content, not the file name prodcat reads, so they are dropped (the product is kept) and reported, as a
    photo not found is. Without this, a binary column fails the whole catalogue on its first undecodable value."""
    issues: list[RowIssue] = []
    id_column = columns["product_id"]
    for canonical, name in sorted(columns.items(), key=lambda item: item[0] != "product_id"):  # ids first
        if name is None or (canonical != "product_id" and name == id_column):
            continue
        ids = table.frame[id_column] if id_column is not None else None
        column = table.frame[name]
        if isinstance(column.dtype, pd.StringDtype):  # strings or missing values only: nothing to write out or report
            texts = column.to_numpy(dtype=object, na_value=None)
        else:
            texts = []
            for line, value in _whole_numbers_as_integers(column).items():
                text, problem = _typed_value_text(value, canonical)
                if problem:
                    product_id = None if ids is None or canonical == "product_id" else ids.loc[line]
                    issues.append(
                        RowIssue(int(line), canonical, f"{table.name}: column {name!r} {problem}", product_id)
                    )
                texts.append(text)
        table.frame[name] = pd.Series(texts, index=table.frame.index, dtype=object)
    return issues


def _whole_numbers_as_integers(column: pd.Series) -> pd.Series:
    """A float column holding whole numbers only as integers: pandas stores an integer column with a gap (ids,
    category codes) as float64, which would read "1.0" where the catalogue says "1"."""
    if not pd.api.types.is_float_dtype(column):
        return column
    values = column.dropna().to_numpy(dtype=float)
    if len(values) and (np.mod(values, 1) == 0).all() and (np.abs(values) < 2**53).all():
        return column.astype("Int64")
    return column


def _typed_value_text(value: Any, canonical: str) -> tuple[str | None, str | None]:
    """One Parquet value as text (``None`` if missing), and what was wrong with it, if anything."""
    if isinstance(value, bytes | bytearray | memoryview):
        return _bytes_text(bytes(value), canonical)
    if isinstance(value, str):
        return value, None
    if isinstance(value, list | tuple | np.ndarray):  # a list column (tags, words): its items, not its repr
        items = [_typed_value_text(item, canonical)[0] for item in value]
        return " ".join(item for item in items if item) or None, None
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return None, None
    return str(value), None


def _bytes_text(data: bytes, canonical: str) -> tuple[str | None, str | None]:
    """Bytes as UTF-8 text; in the image column, a photo's content (or other binary data) is no file name."""
    kind = sniff_image_type(data) if canonical == "image" else None
    if kind is None:
        try:
            return data.decode("utf-8"), None
        except UnicodeDecodeError as exc:
            if canonical != "image":
                problem = f"holds bytes that are not UTF-8 ({exc}); read with U+FFFD in their place"
                return data.decode("utf-8", errors="replace"), problem
    what = f"the {len(data)} bytes of a {kind.upper()} photo" if kind else f"{len(data)} bytes of binary data"
    return None, f"holds {what}, not a photo file path"
