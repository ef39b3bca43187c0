"""The tick pipe's batch body (pipeline.messages.encode_batch) written from TickColumns with numpy: the same
msgpack a list of Tick records is, without a Python object per tick or per value.

Why: at full speed the feed process spent about a microsecond a tick taking each dict's values and encoding
them. Here a window's rows are laid out once as fixed-width msgpack records (a float as float64, an int as
int32 or int64 by its column's range, constants and symbol names as msgspec encodes them), and a worker's
share of a cycle is one gather of its rows. Widths differ from msgspec's compact ints, values and kinds do
not: the worker's decode gives the same Tick records (tests/test_column_path.py compares them with the dict
path's).
"""
from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

from core.types import TICK_FIELDS, TickColumns

_FLOAT, _INT, _INT32, _UINT, _UINT32 = 0xCB, 0xD3, 0xD2, 0xCF, 0xCE
_ROW_HEADER = bytes((0xDC, 0, len(TICK_FIELDS)))  # array16 of the Tick record's fields
_POS = np.dtype([("tag", "u1"), ("v", ">u8")])
_POS32 = np.dtype([("tag", "u1"), ("v", ">u4")])
_encoder = msgspec.msgpack.Encoder()


def array_header(n: int) -> bytes:
    """msgpack's header of an array of n items."""
    if n < 16:
        return bytes((0x90 | n,))
    if n < 1 << 16:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


class ColumnRows:
    """The encoded rows of one TickColumns: take(idx) is the body of a msgpack array of those rows' Tick
    records (no array header), in idx order."""

    def __init__(self, cols: TickColumns):
        names = [_encoder.encode(n) for n in cols.names]
        lens = np.array([len(b) for b in names], dtype=np.int64)
        width = int(lens.max()) if len(names) else 0
        table = np.zeros((max(len(names), 1), max(width, 1)), dtype=np.uint8)
        for i, b in enumerate(names):
            table[i, :len(b)] = np.frombuffer(b, dtype=np.uint8)
        fields: list[tuple[Any, ...]] = [("h", "u1", (3,))]
        fill: list[tuple[str, Any]] = [("h", np.frombuffer(_ROW_HEADER, dtype=np.uint8))]
        for f in TICK_FIELDS:
            if f == "symbol":
                fields.append(("symbol", "u1", (max(width, 1),)))
            elif f in cols.constants:
                b = _encoder.encode(cols.constants[f])
                fields.append((f, "u1", (len(b),)))
                fill.append((f, np.frombuffer(b, dtype=np.uint8)))
            else:
                col = cols.values[f]
                kind = col.dtype.kind
                if kind == "f":
                    fields += [(f + ".t", "u1"), (f, ">f8")]
                    fill.append((f + ".t", _FLOAT))
                elif kind in "iu":  # int32 where the whole column fits (a smaller frame), else int64
                    narrow = not len(col) or (int(col.min()) >= -(1 << 31) and int(col.max()) < 1 << 31)
                    fields += [(f + ".t", "u1"), (f, ">i4" if narrow else ">i8")]
                    fill.append((f + ".t", _INT32 if narrow else _INT))
                else:
                    raise TypeError(f"tick column {f} of dtype {col.dtype}: only ints and floats are encoded")
        layout = np.dtype(fields)
        n = len(cols)
        template = np.zeros(1, dtype=layout)
        for name, value in fill:
            template[name] = value
        rows = np.empty(n, dtype=layout)
        rows.view(np.dtype((np.void, layout.itemsize)))[:] = template.view(np.dtype((np.void, layout.itemsize)))
        for f, col in cols.values.items():
            rows[f] = col
        codes = cols.symbol
        rows["symbol"] = table[codes]
        self.rows = rows
        raw = rows.view(np.uint8).reshape(n, layout.itemsize)
        off = _offset(layout, "symbol")
        self.flat = raw.view(np.dtype((np.void, layout.itemsize))).reshape(n)  # a record per item: fast gathers
        self.row_lens = lens[codes] if len(names) else lens
        self.width = width
        self.sym_end = off + width  # where a row's name field ends
        self.min_len = int(lens.min()) if len(names) else 0

    def take(self, idx: np.ndarray) -> bytes:
        """The rows at idx, msgpack-encoded one after the other."""
        sub = self.flat[idx]
        if self.min_len == self.width:  # every name encodes to the same length (as often): no padding to cut
            return sub.tobytes()
        lens = self.row_lens[idx]
        raw = sub.view(np.uint8).reshape(len(sub), -1)
        col = np.arange(raw.shape[1])
        pad_from = self.sym_end - self.width + lens
        keep = (col[None, :] < pad_from[:, None]) | (col[None, :] >= self.sym_end)
        return raw[keep].tobytes()


def _offset(layout: np.dtype, name: str) -> int:
    fields = layout.fields
    assert fields is not None
    return int(fields[name][1])


def positions_body(positions: np.ndarray) -> bytes:
    """Feed positions as the body of a msgpack array (each a uint64)."""
    narrow = not len(positions) or int(positions.max()) < 1 << 32
    out = np.empty(len(positions), dtype=_POS32 if narrow else _POS)
    out["tag"] = _UINT32 if narrow else _UINT
    out["v"] = positions
    return out.tobytes()


def rows_body(rows: list[tuple[Any, ...]]) -> bytes:
    """Ticks given as values in field order (the dict path's), encoded as encode_batch would, without the array
    header: so they can sit in one batch with column rows."""
    from pipeline.messages import encode_batch

    body = encode_batch(rows, [])  # [ticks, positions]: fixarray(2), ticks' header, rows, empty positions
    return body[1 + len(array_header(len(rows))):-1]


def batch(parts: list[bytes], count: int, positions: np.ndarray) -> bytes:
    """encode_batch's output for `count` tick records already encoded in `parts`, and their positions."""
    return b"".join((b"\x92", array_header(count), *parts, array_header(count), positions_body(positions)))
