"""The replay file format: recorded ticks as CSV or JSON lines, optionally gzip-compressed.

Formats, chosen by the file name: `.csv`, `.csv.gz`, `.jsonl`, `.jsonl.gz`.
- CSV has a header row naming the columns (normally TICK_FIELDS, in that order); an empty cell means the
  SDK sent no value, so the key is left out of the tick. CSV holds the SymbolUpdate fields only.
- JSON lines hold one tick dict per line, every key kept (so depth or index messages survive too).

A recording interrupted by a restart continues in part files beside the first one
(`day.csv.gz`, `day.part2.csv.gz`, ...); reading `day.csv.gz` reads its parts after it.

Reading never stops on a bad line: malformed lines (wrong column count, a value of the wrong type, a
non-finite price, no symbol, a last line cut off without its newline) are counted and skipped with a
warning naming the file and line; a truncated gzip stream ends the read of that file with a warning.
"""
from __future__ import annotations

import codecs
import csv
import glob
import gzip
import json
import logging
import math
import re
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from core.types import TICK_FIELDS, FyersTick

log = logging.getLogger(__name__)

INT_FIELDS = frozenset({"vol_traded_today", "last_traded_time", "exch_feed_time", "bid_size", "ask_size",
                        "last_traded_qty", "tot_buy_qty", "tot_sell_qty", "lower_ckt", "upper_ckt"})
FLOAT_FIELDS = frozenset({"ltp", "bid_price", "ask_price", "avg_trade_price", "low_price", "high_price",
                          "open_price", "prev_close_price", "ch", "chp"})
STR_FIELDS = frozenset({"type", "symbol"})
FORMATS = (".csv", ".csv.gz", ".jsonl", ".jsonl.gz")
MAX_LOGGED_BAD_LINES = 20   # per file; the rest are only counted


class Malformed(ValueError):
    """One line that cannot be a tick; the message says why."""


def file_format(path: Path | str) -> tuple[str, bool]:
    """('csv' | 'jsonl', gzipped) from the file name, or ValueError naming the allowed suffixes."""
    name = Path(path).name.lower()
    for suffix in FORMATS:
        if name.endswith(suffix):
            return suffix.split(".")[1], suffix.endswith(".gz")
    raise ValueError(f"{path}: unknown tick file type -- expected a name ending in {', '.join(FORMATS)}")


def part_path(path: Path | str, n: int) -> Path:
    """The n-th part (n >= 2) of a recording: day.csv.gz -> day.part2.csv.gz."""
    p = Path(path)
    fmt, gz = file_format(p)
    suffix = f".{fmt}" + (".gz" if gz else "")
    return p.with_name(f"{p.name[:-len(suffix)]}.part{n}{suffix}")


def recording_parts(path: Path | str) -> list[Path]:
    """The file and its part files that exist, in recording order."""
    p = Path(path)
    fmt, gz = file_format(p)
    suffix = f".{fmt}" + (".gz" if gz else "")
    stem = p.name[:-len(suffix)]
    pat = re.compile(re.escape(stem) + r"\.part(\d+)" + re.escape(suffix) + "$", re.IGNORECASE)
    parts = sorted((int(m.group(1)), q) for q in p.parent.glob(f"{glob.escape(stem)}.part*{suffix}")
                   if (m := pat.match(q.name)) and int(m.group(1)) >= 2)
    return ([p] if p.exists() else []) + [q for _, q in parts]


def _open_for_writing(path: Path, mode: str, gz: bool) -> IO[str]:
    if gz:
        return gzip.open(path, mode + "t", encoding="utf-8", newline="", compresslevel=5)  # type: ignore[return-value]
    return open(path, mode, encoding="utf-8", newline="")


# ---------------------------------------------------------------- value conversion

def _to_int(v: str) -> int:
    return int(v)


def _to_float(v: str) -> float:
    x = float(v)
    if not math.isfinite(x):
        raise ValueError(f"{v!r} is not a finite number")
    return x


def _to_str(v: str) -> str:
    return v


def _converter(key: str) -> Callable[[str], Any]:
    if key in INT_FIELDS:
        return _to_int
    if key in FLOAT_FIELDS:
        return _to_float
    return _to_str


_FULL_TYPES = tuple(int if k in INT_FIELDS else float if k in FLOAT_FIELDS else str for k in TICK_FIELDS)


def _reject_constant(name: str) -> float:
    raise Malformed(f"{name} is not a finite number")


def _check_json_tick(d: Any) -> FyersTick:
    """Types as the SDK gives them: ints stay ints (an integral float is accepted), prices are floats."""
    if type(d) is dict and tuple(d) == TICK_FIELDS and tuple(map(type, d.values())) == _FULL_TYPES:
        if d["symbol"]:
            return d  # type: ignore[return-value]  # the common case: a complete SymbolUpdate tick
    if not isinstance(d, dict):
        raise Malformed(f"expected a JSON object, got {type(d).__name__}")
    for k, v in d.items():
        if k in FLOAT_FIELDS:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise Malformed(f"{k}: {v!r} is not a number")
            if isinstance(v, int):
                d[k] = float(v)
        elif k in INT_FIELDS:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise Malformed(f"{k}: {v!r} is not a whole number")
            if isinstance(v, float):
                if not v.is_integer():
                    raise Malformed(f"{k}: {v!r} is not a whole number")
                d[k] = int(v)
        elif k in STR_FIELDS and not isinstance(v, str):
            raise Malformed(f"{k}: {v!r} is not a string")
    if not d.get("symbol"):
        raise Malformed("no symbol")
    return d  # type: ignore[return-value]


# ---------------------------------------------------------------- reading

class TickReader:
    """Iterator over the ticks of one recording (and its parts), with counters for what was skipped."""

    def __init__(self, path: Path | str | Sequence[Path | str], start_after: int | None = None,
                 parts: bool = True, log_bad: bool = True):
        if isinstance(path, (str, Path)):
            files = recording_parts(path) if parts else [Path(path)]
            if not files:
                raise FileNotFoundError(f"{path}: no such tick file")
        else:
            files = [Path(p) for p in path]
        for f in files:
            file_format(f)
            if not f.exists():
                raise FileNotFoundError(f"{f}: no such tick file")
        self.files = files
        self.start_after = start_after
        self.lines = 0           # lines read, header included
        self.ticks = 0           # ticks yielded
        self.malformed = 0       # lines skipped as malformed
        self.skipped = 0         # good ticks skipped by start_after
        self.truncated: list[Path] = []
        self.first_bad: tuple[Path, int, str] | None = None  # (file, line, why): what a refusal names
        self.log_bad = log_bad   # False: count bad lines silently (a pre-scan reports them itself)
        self._it = self._read_all()

    def __iter__(self) -> Iterator[FyersTick]:
        return self._it  # the generator itself: no extra call per tick in a for loop

    def __next__(self) -> FyersTick:
        return next(self._it)

    def stats(self) -> dict[str, Any]:
        return {"files": [str(f) for f in self.files], "lines": self.lines, "ticks": self.ticks,
                "malformed": self.malformed, "skipped": self.skipped,
                "truncated": [str(f) for f in self.truncated]}

    def _bad(self, path: Path, lineno: int, why: str, logged: list[int]) -> None:
        self.malformed += 1
        if self.first_bad is None:
            self.first_bad = (path, lineno, why)
        logged[0] += 1
        if self.log_bad and logged[0] <= MAX_LOGGED_BAD_LINES:
            log.warning("%s line %d: malformed tick skipped (%s)", path, lineno, why)
            if logged[0] == MAX_LOGGED_BAD_LINES:
                log.warning("%s: further malformed lines are counted but not logged", path)

    def _read_all(self) -> Iterator[FyersTick]:
        if len(self.files) > 1:
            log.info("reading %s and %d part file(s) after it", self.files[0], len(self.files) - 1)
        for f in self.files:
            yield from self._read_file(f)

    def _read_file(self, path: Path) -> Iterator[FyersTick]:
        fmt, gz = file_format(path)
        logged = [0]
        bad_before = self.malformed
        pos = [0]  # lines consumed so far in this file
        chunks = _text_chunks(path, gz)
        try:
            batches = _line_batches(chunks, pos)
            if fmt == "csv":
                yield from self._csv_ticks(path, batches, logged)
            else:
                yield from self._json_ticks(path, batches, logged)
        except _Truncated as e:
            self.truncated.append(path)
            if self.first_bad is None:
                self.first_bad = (path, pos[0] + 1, str(e))
            if self.log_bad:
                log.warning("%s: file is truncated or corrupt after line %d (%s); the rest of it is not read",
                            path, pos[0], e)
        finally:
            chunks.close()
            self.lines += pos[0]
        if self.malformed > bad_before and self.log_bad:
            log.warning("%s: skipped %d malformed line(s) of %d", path, self.malformed - bad_before, pos[0])

    def _csv_ticks(self, path: Path, batches: Iterator[tuple[int, list[str], bool]],
                   logged: list[int]) -> Iterator[FyersTick]:
        header: list[str] | None = None
        sa = -1 if self.start_after is None else self.start_after
        isfinite = math.isfinite
        for base, lines, partial in batches:
            if partial:
                self._bad(path, base + 1, "last line is incomplete (no newline)", logged)
                continue
            rows = csv.reader(lines)
            first = base  # rows.line_num counts from here
            if header is None:
                try:
                    header = [h.strip() for h in next(rows, [])]
                except csv.Error as e:
                    header = [f"({e})"]
                base += 1
                if "symbol" not in header or len(set(header)) != len(header):
                    raise ValueError(f"{path} line 1: not a tick CSV header (need unique column names "
                                     f"including symbol, e.g. {','.join(TICK_FIELDS)}); "
                                     f"got {ascii(','.join(header)[:80])}")
                fast = tuple(header) == TICK_FIELDS
                col = {k: i for i, k in enumerate(header)}
                plan = [(col[k], k, _converter(k)) for k in TICK_FIELDS if k in col] + \
                    [(i, k, _to_str) for i, k in enumerate(header) if k not in TICK_FIELDS]
                n = len(header)
                sym_i = col["symbol"]
            n_ok = n_skip = 0
            resume = base + 1
            while True:  # a line the csv module cannot parse (a stray CR, a runaway quote) is one bad line
                try:
                    for lineno, row in enumerate(rows, resume):
                        if fast and len(row) == 22 and "" not in row:
                            (ltp, vol, ltt, eft, bs, as_, bp, ap, ltq, tb, ts, avg, lo, hi, lc, uc, op, pc, ty,
                             sym, ch, chp) = row
                            try:
                                tick: dict[str, Any] | None = {"ltp": float(ltp), "vol_traded_today": int(vol),
                                        "last_traded_time": int(ltt), "exch_feed_time": int(eft),
                                        "bid_size": int(bs), "ask_size": int(as_), "bid_price": float(bp),
                                        "ask_price": float(ap), "last_traded_qty": int(ltq), "tot_buy_qty": int(tb),
                                        "tot_sell_qty": int(ts), "avg_trade_price": float(avg),
                                        "low_price": float(lo), "high_price": float(hi), "lower_ckt": int(lc),
                                        "upper_ckt": int(uc), "open_price": float(op),
                                        "prev_close_price": float(pc), "type": ty, "symbol": sym, "ch": float(ch),
                                        "chp": float(chp)}
                            except ValueError:
                                tick = None
                            if tick is not None and isfinite(
                                    tick["ltp"] + tick["bid_price"] + tick["ask_price"] + tick["avg_trade_price"]
                                    + tick["low_price"] + tick["high_price"] + tick["open_price"]
                                    + tick["prev_close_price"] + tick["ch"] + tick["chp"]):
                                if tick["exch_feed_time"] <= sa:
                                    n_skip += 1
                                    continue
                                n_ok += 1
                                yield tick  # type: ignore[misc]
                                continue
                        # slow path: absent values, other column sets, or something wrong with the row
                        if not row:
                            continue  # blank line
                        if len(row) != n:
                            self._bad(path, lineno, f"{len(row)} columns, expected {n}", logged)
                            continue
                        if not row[sym_i]:
                            self._bad(path, lineno, "no symbol", logged)
                            continue
                        t: dict[str, Any] = {}
                        try:
                            for i, k, conv in plan:
                                v = row[i]
                                if v != "":
                                    t[k] = conv(v)
                        except ValueError:
                            self._bad(path, lineno, f"{k}: {row[i]!r} is not a valid value", logged)
                            continue
                        if t.get("exch_feed_time", sa + 1) <= sa:
                            n_skip += 1
                            continue
                        n_ok += 1
                        yield t  # type: ignore[misc]
                    break
                except csv.Error as e:
                    resume = first + rows.line_num + 1
                    self._bad(path, resume - 1, f"not a CSV row ({e})", logged)
            self.ticks += n_ok
            self.skipped += n_skip

    def _json_ticks(self, path: Path, batches: Iterator[tuple[int, list[str], bool]],
                    logged: list[int]) -> Iterator[FyersTick]:
        loads = json.JSONDecoder(parse_constant=_reject_constant).decode
        sa = -1 if self.start_after is None else self.start_after
        for base, lines, partial in batches:
            n_ok = n_skip = 0
            for lineno, line in enumerate(lines, base + 1):
                try:
                    if partial:
                        raise Malformed("last line is incomplete (no newline)")
                    tick = _check_json_tick(loads(line))
                except ValueError as e:  # JSONDecodeError and Malformed are ValueErrors
                    if line.strip():
                        self._bad(path, lineno, str(e)[:200], logged)
                    continue
                if tick.get("exch_feed_time", sa + 1) <= sa:
                    n_skip += 1
                    continue
                n_ok += 1
                yield tick
            self.ticks += n_ok
            self.skipped += n_skip


class _Truncated(Exception):
    """The compressed stream ended early (a crash while writing); everything before it was read."""


def _text_chunks(path: Path, gz: bool, chunk: int = 1 << 20) -> Generator[str, None, None]:
    """Decoded text in large chunks. Gzip is decompressed here (not with gzip.open) so that a stream
    cut off by a crash still yields everything up to the cut, then raises _Truncated."""
    decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
    with open(path, "rb") as fh:
        if not gz:
            while data := fh.read(chunk):
                yield decode(data)
            return
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        pending = b""
        while True:
            raw = pending or fh.read(chunk)
            pending = b""
            if not raw:
                break
            try:
                out = d.decompress(raw)
            except zlib.error as e:
                raise _Truncated(f"corrupt gzip data ({e})") from None
            if out:
                yield decode(out)
            if d.eof:  # end of one gzip member; a recording may hold several
                pending = d.unused_data
                d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                if not pending:
                    nxt = fh.read(chunk)
                    if not nxt:
                        return
                    pending = nxt
        if not d.eof:
            raise _Truncated("the compressed stream ended before its end marker")


def _line_batches(chunks: Iterator[str], pos: list[int]) -> Iterator[tuple[int, list[str], bool]]:
    """(lines before this batch, complete lines, False) per chunk; finally (n, [rest], True) when the
    text does not end with a newline, so a line cut off by a crash is never taken for a tick."""
    rest = ""
    for data in chunks:
        if "\r" in data:
            data = data.replace("\r\n", "\n")
        lines = (rest + data).split("\n")
        rest = lines.pop()
        if lines:
            base = pos[0]
            pos[0] += len(lines)
            yield base, lines, False
    if rest:
        base = pos[0]
        pos[0] += 1
        yield base, [rest], True


def read_ticks(path: Path | str | Sequence[Path | str], start_after: int | None = None,
               parts: bool = True, log_bad: bool = True) -> TickReader:
    """Ticks from a recorded file (and its part files), skipping those at or before `start_after`.

    The result is an iterator; its `malformed`, `skipped`, `ticks` and `truncated` say what happened.
    """
    return TickReader(path, start_after=start_after, parts=parts, log_bad=log_bad)


# ---------------------------------------------------------------- writing

class TickWriter:
    """Writes ticks in the replay format. Not thread-safe: one writer thread (see feeds.recorder)."""

    def __init__(self, path: Path | str, *, exclusive: bool = False, fields: Sequence[str] = TICK_FIELDS):
        self.path = Path(path)
        self.fmt, gz = file_format(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fields = tuple(fields)
        self.count = 0
        self.rejected = 0
        self._fh = _open_for_writing(self.path, "x" if exclusive else "w", gz)
        self._csv = None
        if self.fmt == "csv":
            self._csv = csv.writer(self._fh, lineterminator="\n")
            self._csv.writerow(self.fields)
        self._dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode

    def write(self, tick: FyersTick) -> None:
        self.write_many((tick,))

    def write_many(self, ticks: Iterable[FyersTick]) -> int:
        """Append ticks; a tick that cannot be written (e.g. a NaN in JSON) is counted in `rejected`."""
        n = 0
        if self._csv is not None:
            fields = self.fields
            rows = []
            for t in ticks:
                row: Mapping[str, Any] = t
                rows.append([row.get(k, "") for k in fields])
            self._csv.writerows(rows)
            n = len(rows)
        else:
            dumps = self._dumps
            out = []
            for t in ticks:
                try:
                    out.append(dumps(t))
                except (TypeError, ValueError) as e:
                    self.rejected += 1
                    log.warning("%s: tick not recorded (%s): %.200r", self.path, e, t)
                    continue
            if out:
                self._fh.write("\n".join(out) + "\n")
            n = len(out)
        self.count += n
        return n

    def flush(self) -> None:
        """Push buffered ticks to the OS (for gzip, a sync point: a crash keeps everything before it)."""
        self._fh.flush()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()

    def __enter__(self) -> TickWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def write_ticks(path: Path | str, ticks: Iterable[FyersTick], batch: int = 10_000) -> int:
    """Write all ticks to `path` (replacing it); returns how many were written."""
    with TickWriter(path) as w:
        buf: list[FyersTick] = []
        for t in ticks:
            buf.append(t)
            if len(buf) >= batch:
                w.write_many(buf)
                buf = []
        if buf:
            w.write_many(buf)
        return w.count


__all__ = ["read_ticks", "TickReader", "TickWriter", "write_ticks", "recording_parts", "part_path",
           "file_format", "FORMATS", "INT_FIELDS", "FLOAT_FIELDS", "STR_FIELDS"]
