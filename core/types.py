"""The one definition of each value the processes share: a Fyers tick as it comes, the Tick record the
daemon works with, and a Signal."""
from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Any, Protocol, TypedDict

import msgspec

from core.enums import PositionSide, SignalType


class FyersTick(TypedDict, total=False):
    """A Fyers `SymbolUpdate` message in full mode (type 'sf'), exactly as the SDK hands it to on_message: what
    the feeds produce and record. The feed process turns each one it admits into a Tick (below), once.

    Keys may be absent when the exchange sent no value; times are epoch seconds (UTC epoch).
    """

    ltp: float
    vol_traded_today: int
    last_traded_time: int
    exch_feed_time: int
    bid_size: int
    ask_size: int
    bid_price: float
    ask_price: float
    last_traded_qty: int
    tot_buy_qty: int
    tot_sell_qty: int
    avg_trade_price: float
    low_price: float
    high_price: float
    lower_ckt: float
    upper_ckt: float
    open_price: float
    prev_close_price: float
    type: str
    symbol: str
    ch: float
    chp: float


# Field order as the SDK emits it (fyers-datasocket.md §2.2); also the MarketData column order.
TICK_FIELDS: tuple[str, ...] = (
    "ltp", "vol_traded_today", "last_traded_time", "exch_feed_time", "bid_size", "ask_size",
    "bid_price", "ask_price", "last_traded_qty", "tot_buy_qty", "tot_sell_qty", "avg_trade_price",
    "low_price", "high_price", "lower_ckt", "upper_ckt", "open_price", "prev_close_price",
    "type", "symbol", "ch", "chp",
)


Num = int | float  # as the exchange sent it: an int stays an int, so a replay computes exactly alike


class Tick(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """One tick inside the daemon: the compact record a FyersTick becomes at the feed edge (Tick.from_feed),
    which crosses the tick pipes (pipeline.messages) and which the worker and the strategies read by field.

    Why a record and not the dict: it encodes as a bare array (no key names on the wire) and decodes typed, a
    third of the dict's cost to unpickle; frozen, so a tick held back for a pending signal is kept as is.
    A field is None when the exchange sent no value. Field order is TICK_FIELDS (checked at import).
    """

    ltp: Num | None = None
    vol_traded_today: Num | None = None
    last_traded_time: Num | None = None
    exch_feed_time: Num | None = None
    bid_size: Num | None = None
    ask_size: Num | None = None
    bid_price: Num | None = None
    ask_price: Num | None = None
    last_traded_qty: Num | None = None
    tot_buy_qty: Num | None = None
    tot_sell_qty: Num | None = None
    avg_trade_price: Num | None = None
    low_price: Num | None = None
    high_price: Num | None = None
    lower_ckt: Num | None = None
    upper_ckt: Num | None = None
    open_price: Num | None = None
    prev_close_price: Num | None = None
    type: str | None = None
    symbol: str | None = None
    ch: Num | None = None
    chp: Num | None = None

    @classmethod
    def from_feed(cls, msg: Mapping[str, Any]) -> Tick:
        """The record of a Fyers tick dict; keys the record does not have are dropped. A value of the wrong
        kind (a string or bool where a number belongs: nothing the feed's TickValidator judges) becomes None,
        so one odd field cannot make a whole batch undecodable in the worker."""
        return cls.from_values(tick_values(msg))

    @classmethod
    def from_values(cls, values: tuple[Any, ...]) -> Tick:
        """The record of tick_values(msg): from_feed in two steps, so the feed can take the values per tick and
        build the records a batch at a time (records())."""
        try:
            return msgspec.convert(values, cls)  # checked in C: the common case costs no more than building it
        except msgspec.ValidationError:
            return cls.fitted(values)

    @classmethod
    def fitted(cls, values: tuple[Any, ...]) -> Tick:
        """The record with every value that cannot stand in its field, or cross a pipe, as None."""
        return cls(*(v if _fits(v, f) else None for v, f in zip(values, TICK_FIELDS, strict=False)))

    def time(self) -> Num | None:
        """The tick's feed time: exch_feed_time, else last_traded_time (None if neither came)."""
        t = self.exch_feed_time
        return self.last_traded_time if t is None else t


_TEXT_FIELDS = frozenset({"type", "symbol"})


def _fits(v: Any, field_name: str) -> bool:
    """Whether v can stand in this field of the record and cross a pipe (msgpack ints are 64-bit)."""
    if field_name in _TEXT_FIELDS:
        return type(v) is str
    return type(v) is float or (type(v) is int and -2**63 <= v < 2**64)


if Tick.__struct_fields__ != TICK_FIELDS:  # the wire order is the field order
    raise RuntimeError("core.types.Tick fields must follow TICK_FIELDS")

_all_fields = operator.itemgetter(*TICK_FIELDS)
_tick_list = list[Tick]


def tick_values(msg: Mapping[str, Any]) -> tuple[Any, ...]:
    """A Fyers tick dict's values in TICK_FIELDS order, None for a key it lacks (other keys are dropped)."""
    try:
        return _all_fields(msg)  # type: ignore[no-any-return]  # one C call when every key came, as it does
    except KeyError:
        return tuple(map(msg.get, TICK_FIELDS))


def records(rows: list[tuple[Any, ...]]) -> list[Tick]:
    """[Tick.from_values(v) for v in rows], checked in C in one call when every value fits (the common case)."""
    try:
        return msgspec.convert(rows, _tick_list)
    except msgspec.ValidationError:
        return [Tick.from_values(v) for v in rows]


class TickColumns:
    """A run of ticks as columns, in feed order: what the synthetic day produces a window at a time, so the feed
    can judge, route and encode them in bulk (numpy) instead of building a FyersTick dict per tick.

    `values` maps each numeric TICK_FIELDS name to an int64 or float64 column (ints stay ints, as the dicts'
    values are); `constants` holds the fields every tick has alike (e.g. type 'sf'); `symbol` is a code per
    tick into `names`. tick(i) is row i as the very dict the dict path would have carried.
    """

    __slots__ = ("values", "constants", "symbol", "names")

    def __init__(self, values: dict[str, Any], constants: dict[str, Any], symbol: Any, names: tuple[str, ...]):
        if set(values) | set(constants) | {"symbol"} != set(TICK_FIELDS):
            raise ValueError("TickColumns needs every tick field once, as a column or a constant")
        self.values = values
        self.constants = constants
        self.symbol = symbol
        self.names = names

    def __len__(self) -> int:
        return int(self.symbol.shape[0])

    def tick(self, i: int) -> dict[str, Any]:
        """Row i as a FyersTick dict, keys in TICK_FIELDS order (for the per-tick paths and the validator's
        memory of a symbol's last tick)."""
        values, constants = self.values, self.constants
        return {f: (self.names[int(self.symbol[i])] if f == "symbol" else
                    constants[f] if f in constants else values[f][i].item()) for f in TICK_FIELDS}

    def slice(self, lo: int, hi: int) -> TickColumns:
        """Rows lo..hi-1 (views, no copy)."""
        return TickColumns({k: v[lo:hi] for k, v in self.values.items()}, self.constants, self.symbol[lo:hi],
                           self.names)

    def take(self, rows: Any) -> TickColumns:
        """The rows a numpy index or mask selects, in order (copies)."""
        return TickColumns({k: v[rows] for k, v in self.values.items()}, self.constants, self.symbol[rows],
                           self.names)


class SignalRow(Protocol):
    """The columns of a StockSignals row (db.StockSignal) that Signal.from_row reads; nullable ones may be None."""

    @property
    def symbol(self) -> str: ...
    @property
    def strategy(self) -> str: ...
    @property
    def time(self) -> int: ...
    @property
    def price(self) -> float: ...
    @property
    def type(self) -> str: ...
    @property
    def current_position(self) -> str: ...
    @property
    def stop_loss(self) -> float | None: ...
    @property
    def take_profit_price(self) -> float | None: ...
    @property
    def position_size(self) -> int | None: ...
    @property
    def close_fraction(self) -> float | None: ...
    @property
    def note(self) -> str | None: ...
    @property
    def attempt_count(self) -> int | None: ...


class Signal(msgspec.Struct, frozen=True):
    """What a strategy wants done for one symbol; the TradeManager decides whether and how much.

    `symbol` is the OpenAlgo name (e.g. SBIN). `time` is the feed second of the tick that produced it and
    `price` its LTP. Numbers are Num, kept as computed (an int stays an int): signal_id is built from `time`,
    so the id the driver answers under must be the one the worker computed, and a decoder that made 600 into
    600.0 would change what the far side prints and computes. `position_size` is a requested quantity (0: let
    the RiskManager size it); `close_fraction` is the share of the open quantity a take-profit closes.
    `forced`: a per-symbol cap turned it into an exit (in the worker on the crossing tick, or in the
    TradeManager). `origin_id`/`origin_type`: the TradeManager rewrote a signal the worker emitted (a cap
    crossed: an entry or take-profit became a forced exit); the worker waits on that original id and type
    (emitted_id, emitted_type). `extra`: the strategy's own figures behind the signal, for tests and the
    record (opening_range_breakout: range_high, range_low; ma_crossover: atr); nothing decides on them.

    One definition, three forms, each mapped once: the StockSignals row (to_row/from_row), JSON-safe state in
    a strategy's checkpoint (to_state/from_state), and the msgpack wire between processes (SignalRaised in
    pipeline.messages), the last two by msgspec from the field types, so no field list is written twice.
    """

    symbol: str
    time: Num
    price: Num
    type: SignalType
    current_position: PositionSide
    strategy: str
    stop_loss: Num | None = None
    take_profit_price: Num | None = None
    position_size: int = 0
    close_fraction: Num = 1.0
    note: str = ""
    attempt_count: int = 1
    forced: bool = False
    origin_id: str | None = None
    origin_type: SignalType | None = None
    extra: dict[str, Num | None] = {}

    @property
    def signal_id(self) -> str:
        """Deterministic id: the same tick stream yields the same ids, so a replayed or restarted
        day recognises signals it has already acted on."""
        return f"{self.strategy}:{self.symbol}:{self.time}:{self.type.value}:{self.current_position.value}"

    @property
    def emitted_id(self) -> str:
        """The id the worker emitted this signal under, and waits on for its outcome."""
        return self.signal_id if self.origin_id is None else self.origin_id

    @property
    def emitted_type(self) -> SignalType:
        """The type the worker emitted this signal as (its outcome goes to that type's book)."""
        return self.type if self.origin_type is None else self.origin_type

    def replace(self, **changes: Any) -> Signal:
        return msgspec.structs.replace(self, **changes)

    def checked(self) -> Signal:
        """This signal as the driver will decode it. A strategy can put any Python value in a field (a numpy
        number, a Decimal, None where a price belongs) and the Struct does not check at construction; the wire
        does. A ValueError naming the field, raised in the worker inside the strategy's containment, stops that
        strategy instead of the driver's loop."""
        try:
            return _SIGNAL_DECODER.decode(_SIGNAL_ENCODER.encode(self))
        except (TypeError, msgspec.ValidationError) as e:
            raise ValueError(f"{self.symbol}: the signal from strategy {self.strategy!r} cannot be sent: {e}") from None

    def to_row(self) -> dict[str, Any]:
        """Columns of the StockSignals table (forced, origin and extra are not kept there)."""
        return {"signal_id": self.signal_id, "symbol": self.symbol, "strategy": self.strategy, "time": self.time,
                "price": self.price, "type": self.type.value, "current_position": self.current_position.value,
                "stop_loss": self.stop_loss, "take_profit_price": self.take_profit_price,
                "position_size": self.position_size, "close_fraction": self.close_fraction, "note": self.note,
                "attempt_count": self.attempt_count}

    @classmethod
    def from_row(cls, row: SignalRow) -> Signal:
        """The signal a StockSignals row recorded (the Reconciler's view after a restart): to_row's inverse,
        with a nullable column's default where the row has none."""
        return cls(symbol=row.symbol, time=int(row.time), price=float(row.price), type=SignalType(row.type),
                   current_position=PositionSide(row.current_position), strategy=row.strategy,
                   stop_loss=row.stop_loss, take_profit_price=row.take_profit_price,
                   position_size=row.position_size or 0, close_fraction=row.close_fraction or 1.0,
                   note=row.note or "", attempt_count=row.attempt_count or 1)

    def to_state(self) -> dict[str, Any]:
        """JSON-safe data (enums as their values) for a strategy's saved state."""
        state: dict[str, Any] = msgspec.to_builtins(self)
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Signal:
        """to_state's inverse; a ValueError (msgspec.ValidationError) if it does not describe a Signal."""
        return msgspec.convert(state, cls)


_SIGNAL_ENCODER = msgspec.msgpack.Encoder()
_SIGNAL_DECODER = msgspec.msgpack.Decoder(Signal)
