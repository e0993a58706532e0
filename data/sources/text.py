"""Delimited text read in blocks of whole records, every row tagged with its line number.

A block of whole lines with no quote character and no ``rows`` cut inside it (the usual
case) is handed whole to polars' multi-threaded CSV reader (about twice as fast as arrow's on
numbers here); when every line holds the expected separators and polars returns one record per
line (no blank line was skipped), its records are its lines, numbered from the block's first.
Any other block, and one that polars refuses, takes the careful path: record boundaries, line
numbers and the number of columns of every record are found with numpy on the raw bytes
(quote-aware when ``quoted``), so a bad record is reported by its 1-based line number before
pyarrow parses the rest. Blank lines are ignored. Text columns come back as pandas' arrow
strings without a copy (``large_string``). Memory is bounded by the block size, whatever the
length of the file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

from ..raw import Chunk, DataError, Problem

BLOCK_BYTES = 32 << 20
_NEWLINE, _CARRIAGE_RETURN, _QUOTE = ord("\n"), ord("\r"), ord('"')
_SEPARATOR_NAMES = {"\t": "tab", ",": "comma", "|": "pipe", ";": "semicolon"}


def read_header(path: Path, *, sep: str, encoding: str = "utf-8") -> list[str]:
    """Column names on the first line of ``path``; an empty file is an error."""
    with open(path, encoding=encoding, newline="") as f:
        first = f.readline()
    if not first.strip():
        raise DataError(f"{path}: the file is empty (expected a header line with column names)")
    return next(csv.reader([first.lstrip("\ufeff").rstrip("\r\n")], delimiter=sep))


def read_blocks(
    path: Path,
    *,
    columns: list[str],
    sep: str,
    header: bool,
    quoted: bool = False,
    encoding: str = "utf-8",
    rows: int | None = None,
    numbers: tuple[str, ...] = (),
) -> Iterator[Chunk]:
    """Yield the records of ``path`` as string columns ``columns``, index = line number.

    ``header`` skips the first line; ``rows`` stops after that many (non-blank) records. The
    ``numbers`` columns are parsed as float64 by arrow (empty = NaN) when every value of the
    block parses, else left as strings so that ``data.raw.parse_numbers`` names the bad row.
    """
    quote = _QUOTE if quoted else None
    expected_seps = len(columns) - 1
    line = 1
    left = rows
    with open(path, "rb") as f:
        pending = b""
        if header:
            f.readline()
            line = 2
        while left is None or left > 0:
            buffer = bytearray(len(pending) + BLOCK_BYTES)  # read into place: no copy of the block
            buffer[: len(pending)] = pending
            got = f.readinto(memoryview(buffer)[len(pending):])
            del buffer[len(pending) + got:]
            fast = _fast(buffer, final=not got, columns=columns, sep=sep, quoted=quoted, encoding=encoding,
                         left=left, numbers=numbers)
            if fast is not None:
                frame, records, consumed = fast
                frame.index = pd.RangeIndex(line, line + records, name="line")
                yield Chunk(frame, path, "line", [], header_lines=int(header))
                line += records
                left = None if left is None else left - records
                pending = buffer[consumed:]
                if not got:
                    return
                continue
            block = _scan(buffer, ord(sep), quote, final=not got)
            if block is None:
                if not got:
                    return
                pending = buffer
                continue
            lines = line + block.newlines_before
            records = ~block.blank
            if left is not None:
                cut = np.searchsorted(np.cumsum(records), left, side="right")
                block.truncate(cut)
                lines, records = lines[:cut], records[:cut]
                left -= int(records.sum())
            good = records & (block.separators == expected_seps)
            wrong = records & ~good
            problems = []
            if wrong.any():
                found = int(block.separators[wrong][0]) + 1
                sep_name = _SEPARATOR_NAMES.get(sep, repr(sep))
                problems.append(Problem(
                    path, "line", "wrong number of columns", lines[wrong],
                    f"expected {len(columns)} {sep_name}-separated columns, found {found}",
                ))
            if good.any():
                frame = _parse(block.select(buffer, good), columns, sep, quoted, encoding, path, lines, numbers)
            else:
                frame = pd.DataFrame({c: pd.Series([], dtype="str") for c in columns})
            frame.index = pd.Index(lines[good], name="line")
            yield Chunk(frame, path, "line", problems, header_lines=int(header))
            line += block.newlines
            pending = buffer[block.consumed:]
            if not got:
                return


def _fast(buffer: bytearray, *, final: bool, columns, sep, quoted, encoding, left, numbers):
    """``(frame, records, bytes consumed)`` of the whole lines of ``buffer`` read by polars in
    one call, or None where the careful path must read them (see the module)."""
    end = len(buffer) if final else buffer.rfind(b"\n") + 1
    if not end or encoding.lower().replace("-", "") not in ("utf8", "ascii"):
        return None
    if quoted and buffer.find(b'"', 0, end) >= 0:
        return None
    data = np.frombuffer(buffer, dtype=np.uint8, count=end)
    records = int(np.count_nonzero(data == _NEWLINE)) + (buffer[end - 1] != _NEWLINE)
    if (left is not None and records > left) or np.count_nonzero(data == ord(sep)) != records * (len(columns) - 1):
        return None  # a record with too few separators (polars fails on one with too many)
    schema = {c: pl.Float64 if c in numbers else pl.String for c in columns}
    try:
        frame = pl.read_csv(io.BytesIO(memoryview(buffer)[:end]), has_header=False, new_columns=columns,
                            separator=sep, quote_char=None, schema_overrides=schema, infer_schema=False,
                            empty_string_is_null=False)
    except (pl.exceptions.PolarsError, UnicodeDecodeError):
        return None
    if frame.height != records:  # a blank line was skipped: the line numbers would shift
        return None
    return frame.to_arrow(compat_level=pl.CompatLevel.oldest()).to_pandas(), records, end


@dataclass
class _Block:
    """The complete records at the start of a byte buffer (one entry per record)."""

    starts: np.ndarray  # byte offset of the record
    ends: np.ndarray  # offset of its line end (of its last byte at the end of the file)
    separators: np.ndarray  # separators outside quotes
    newlines_before: np.ndarray  # line ends before the record's start
    blank: np.ndarray  # the record is an empty line
    newlines: int  # line ends within the records

    @property
    def consumed(self) -> int:
        return int(self.ends[-1]) + 1 if len(self.ends) else 0

    def truncate(self, count: int) -> None:
        self.newlines = int(self.newlines_before[count]) if count < len(self.starts) else self.newlines
        self.starts, self.ends = self.starts[:count], self.ends[:count]
        self.separators, self.newlines_before = self.separators[:count], self.newlines_before[:count]
        self.blank = self.blank[:count]

    def select(self, buffer: bytes, keep: np.ndarray) -> bytes | memoryview:
        """The bytes of the kept records (each with its line end)."""
        if keep.all():
            return memoryview(buffer)[: self.consumed]
        lengths = np.diff(np.append(self.starts, self.consumed))
        data = np.frombuffer(buffer, dtype=np.uint8, count=self.consumed)
        return data[np.repeat(keep, lengths)].tobytes()


def _scan(buffer: bytearray, sep: int, quote: int | None, final: bool) -> _Block | None:
    """Complete records of ``buffer``; at the end of the file the unterminated tail is one more."""
    data = np.frombuffer(buffer, dtype=np.uint8)
    newline = data == _NEWLINE
    is_sep = data == sep
    if quote is not None:
        outside = (np.cumsum(data == quote, dtype=np.uint8) & 1) == 0
        record_end, is_sep = newline & outside, is_sep & outside
    else:
        record_end = newline
    ends = np.flatnonzero(record_end)
    if final and len(data) and (not len(ends) or ends[-1] != len(data) - 1):
        ends = np.append(ends, len(data) - 1)
    if not len(ends):
        return None
    starts = np.append(0, ends[:-1] + 1)
    running = np.cumsum(is_sep, dtype=np.uint16)  # wraps, but differences below 2**16 stay exact
    separators = (running[ends] - running[starts] + is_sep[starts] - is_sep[ends]).astype(np.int64)
    newline_positions = ends if quote is None else np.flatnonzero(newline[: ends[-1] + 1])
    if quote is None and final and data[ends[-1]] != _NEWLINE:
        newline_positions = ends[:-1]
    content = ends - starts + (data[ends] != _NEWLINE)
    blank = (content == 0) | ((content == 1) & (data[starts] == _CARRIAGE_RETURN))
    newlines_before = np.searchsorted(newline_positions, starts)
    return _Block(starts, ends, separators, newlines_before, blank, len(newline_positions))


def _parse(raw, columns, sep, quoted, encoding, path, lines, numbers=()) -> pd.DataFrame:
    if encoding.lower().replace("-", "") not in ("utf8", "ascii"):
        raw = bytes(raw).decode(encoding).encode("utf-8")
    types = dict.fromkeys(columns, pa.large_string())
    try:
        if numbers:
            try:
                return _read(raw, columns, sep, quoted, types | dict.fromkeys(numbers, pa.float64())).to_pandas()
            except pa.ArrowInvalid:
                pass  # a value that is not a number: read as text, parse_numbers reports its row
        return _read(raw, columns, sep, quoted, types).to_pandas()
    except (pa.ArrowInvalid, UnicodeDecodeError) as err:
        raise DataError(f"{path}, lines {lines[0]}-{lines[-1]}: cannot parse the text: {err}") from err


def _read(raw, columns, sep, quoted, types) -> pa.Table:
    return pacsv.read_csv(
        pa.py_buffer(raw),
        read_options=pacsv.ReadOptions(column_names=columns),
        parse_options=pacsv.ParseOptions(delimiter=sep, quote_char='"' if quoted else False,
                                         newlines_in_values=quoted),
        convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=False,
                                             quoted_strings_can_be_null=False),
    )
