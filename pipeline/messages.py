"""What travels between the processes, with one definition each, typed and named (never a tuple read by
position).

Tick pipe (feed process -> worker): one frame per cycle, written by the DataDispatcher (encode_frame) and
read by the worker (decode_frame): a TickFrame. Its header (FRAME: seq, through_ts, through_pos, t_wall) is
the cycle's marker: every tick with time <= through_ts, and every tick numbered <= through_pos, has been
dispatched; t_wall: when the batch's first tick reached the feed process (latency figures). Behind it, the
worker's batch for the cycle if it has one, msgpack-encoded (encode_batch): the Tick records (core.types.Tick,
each a bare array) in feed order and their feed positions. The feed writes each tick's values in field order,
which encode as its record would, and the worker decodes them into records in one C call (a tick with a field
of the wrong kind gets it as None there, as Tick.from_feed would have). The batch is encoded once per cycle in the
feed process and kept as bytes, since a restarted worker is sent the same frames again.

Control queue (driver -> worker), commands:  ApplyFeedback, UseTickPipe, StopWorker.
Event pipes (worker -> driver), events:      WorkerReady, SignalRaised, MarksTaken, WatermarkReached,
                                             CheckpointTaken, StrategyTurnedOff, WorkerStopped.
Report pipe (feed process -> driver), events: FeedStarted, FeedFailed, CycleDelivered, TicksResent.
Command pipe (driver -> feed process):       SetLowWatermark, ForgetThrough, MarkWorkerDown, ReplaceTickPipe,
                                             StopFeed.
These go through multiprocessing queues and pipes, which pickle them; a Struct pickles compactly. The event
pipes are the exception: their events cross as msgpack (pipeline.events writes each one in the worker and
the driver decodes it), about a tenth of pickle's cost for a SignalRaised, whose Signal's enums would
otherwise be looked up by value on every unpickle. Numbers a tick carried stay Num (int or float) on that
wire: msgpack keeps the two apart, where a float field would turn 600 into 600.0. All are frozen: change
one with msgspec.structs.replace.
"""
from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import msgspec

from core.types import TICK_FIELDS, Num, Signal, Tick

FRAME = struct.Struct("<qqqd")

END_OF_FEED = 2**62  # a marker's through_ts when the feed has finished


class MessageError(ValueError):
    """A frame that cannot be read: it did not come from this daemon's feed process, or was cut short."""


# ---------------------------------------------------------------------------------------------- tick pipe
class TickFrame(msgspec.Struct, frozen=True, gc=False):
    """One cycle for one worker: the marker, and the worker's ticks in it (empty: the marker only)."""

    seq: int
    through_ts: int
    through_pos: int
    t_wall: float
    ticks: list[Tick] = []
    positions: list[int] = []


_batch_encoder = msgspec.msgpack.Encoder()
_batch_decoder = msgspec.msgpack.Decoder(tuple[list[Tick], list[int]])


def encode_batch(ticks: Sequence[Tick | tuple[Any, ...]], positions: list[int]) -> bytes:
    """A worker's ticks of one cycle and their feed positions, as the body of its frame. A tick is its Tick
    record or its values in field order (core.types.tick_values): they encode alike, since a record is a bare
    array, so the feed sends the values and only the worker builds the records (decode_frame). Values that
    cannot be encoded at all (an object msgpack has no type for, an int past 64 bits) make the batch go as
    records with such a value None (Tick.fitted)."""
    try:
        return _batch_encoder.encode((ticks, positions))
    except (TypeError, ValueError, OverflowError):
        return _batch_encoder.encode(([Tick.fitted(t if isinstance(t, tuple) else msgspec.structs.astuple(t))
                                       for t in ticks], positions))


def encode_frame(seq: int, through_ts: int, through_pos: int, t_wall: float, batch: bytes | None) -> bytes:
    """The marker, with the encoded batch (encode_batch) behind it if there is one."""
    header = FRAME.pack(seq, through_ts, through_pos, t_wall)
    return header if batch is None else header + batch


def decode_frame(buf: bytes | memoryview) -> TickFrame:
    """The frame as the feed process wrote it. MessageError if it is short, or its batch is not a list of
    Tick records with as many positions: a worker must not run on half a batch."""
    if len(buf) < FRAME.size:
        raise MessageError(f"tick frame of {len(buf)} bytes: shorter than its {FRAME.size}-byte header")
    seq, through_ts, through_pos, t_wall = FRAME.unpack_from(buf)
    if len(buf) == FRAME.size:
        return TickFrame(seq, through_ts, through_pos, t_wall)
    body = memoryview(buf)[FRAME.size:]
    try:
        ticks, positions = _batch_decoder.decode(body)
    except msgspec.DecodeError as e:
        ticks, positions = _with_odd_fields(seq, body, e)
    if len(ticks) != len(positions):
        raise MessageError(f"tick frame {seq}: {len(ticks)} ticks but {len(positions)} positions")
    return TickFrame(seq, through_ts, through_pos, t_wall, ticks, positions)


_values_decoder = msgspec.msgpack.Decoder(tuple[list[tuple[Any, ...]], list[int]])


def _with_odd_fields(seq: int, body: memoryview, err: msgspec.DecodeError) -> tuple[list[Tick], list[int]]:
    """A batch that is not all Tick records: the feed sends each tick's values as they came, so a field of
    the wrong kind (a string where a number belongs: nothing the feed's validator judges) arrives as is and
    becomes None here, as Tick.from_feed would have made it. A batch that is no list of whole ticks (every
    field, the symbol and price among them) is refused: MessageError."""
    refused = MessageError(f"tick frame {seq}: its batch is not a list of tick records with their positions "
                           f"({err})")
    try:
        rows, positions = _values_decoder.decode(body)
    except msgspec.DecodeError:
        raise refused from None
    ticks: list[Tick] = []
    for v in rows:
        if len(v) != len(TICK_FIELDS):
            raise refused
        t = Tick.from_values(v)
        if t.symbol is None or t.ltp is None:
            raise refused
        ticks.append(t)
    return ticks, positions


class Outcome(msgspec.Struct, frozen=True):
    """What became of a signal; the worker holds the symbol's ticks until it knows.

    status: executed (the order filled, or signals_only recorded it), failed (nothing happened; an entry
    resets the strategy), incomplete (an exit/take-profit did not complete; the next one merges with it),
    ignored (nothing to do, e.g. an exit for a position the daemon does not hold).
    force_exit: the TradeManager turned the signal into a forced exit (cap crossed): reset the strategy.
    """

    signal_id: str
    symbol: str
    signal_type: str
    status: str
    force_exit: bool = False
    incomplete: dict[str, Any] | None = None  # seed chart 2 incomplete-trade record for this symbol
    note: str = ""


class ForceExit(msgspec.Struct, frozen=True):
    """The TradeManager closed the symbol's position on its own (square-off, cap, reconciliation)."""

    symbol: str
    reason: str


class Watch(msgspec.Struct, frozen=True):
    """Start or stop sending this symbol's quotes to the paper broker (it has an order or a position)."""

    symbol: str
    on: bool


class StrategyDisabled(msgspec.Struct, frozen=True):
    """A symbol's strategy raised: the worker calls it no more today. The TradeManager records it (status
    shows it; a restart the same day keeps it off) and keeps managing the symbol's position."""

    symbol: str
    strategy: str
    reason: str  # the exception, one line; the traceback is in the worker's log
    time: int    # feed time of the tick it raised on (epoch seconds; 0 if not on a tick)


class CapTriggers(msgspec.Struct, frozen=True):
    """The symbol's open position and the prices at which its per-symbol caps are crossed.

    Sent whenever the trade's books change (fill, partial exit, reconciliation); side None clears it (the
    position is closed). The worker checks every tick against the prices, so a cap acts on the crossing tick,
    and reports the position's last price (MARKS) for the global caps. A price of None: that cap is off
    (or force_exit_on_cap is false).
    """

    symbol: str
    side: str | None            # PositionSide value of the open trade
    loss_at: float | None = None    # long: ltp <= loss_at crosses; short: ltp >= loss_at
    profit_at: float | None = None  # long: ltp >= profit_at crosses; short: ltp <= profit_at
    since: int = 0  # feed time the position exists from: a resumed replay's earlier ticks are not checked


class DayHalted(msgspec.Struct, frozen=True):
    """Trading was halted for the rest of the day (a risk cap, the operator's halt, a reconciliation finding: a
    halt holds for the day), so no entry will be made again today. The worker stops the symbol's strategy as soon
    as the symbol is flat with nothing pending (MarketDataHandler.park): what it would say could only be refused.
    Sent to every symbol once per day, and again after a restart on a halted day."""

    symbol: str
    reason: str


class Marks(msgspec.Struct, frozen=True):
    """Prices of open positions at data-second `time`, for the global caps (RiskManager.price_tracker)."""

    time: int
    prices: dict[str, Num]  # each LTP as its tick carried it


class WorkerProgress(NamedTuple):
    """A worker's running counts, with each watermark (the heartbeat's ticks/s, the status's held ticks)."""

    ticks: int
    bad_ticks: int
    signals: int
    awaiting: int      # symbols holding their ticks for a signal's outcome
    held_ticks: int    # ticks held meanwhile


@dataclass(slots=True)
class WorkerStats:
    ticks: int = 0
    bad_ticks: int = 0
    bad_by_reason: dict[str, int] = field(default_factory=dict)
    signals: int = 0
    held_symbols: int = 0


Feedback = Outcome | ForceExit | Watch | CapTriggers | DayHalted


# ------------------------------------------------------------------------------- control queue (commands)
class ApplyFeedback(msgspec.Struct, frozen=True):
    """The TradeManager's feedback for this worker; n counts the worker's feedback, so a restarted worker
    skips what its checkpoint had already applied."""

    n: int
    body: Feedback


class UseTickPipe(msgspec.Struct, frozen=True):
    """The feed process was restarted: read this pipe (pickled by multiprocessing) once the old one ends."""

    pipe: bytes


class StopWorker(msgspec.Struct, frozen=True):
    """Drain the tick pipe to the feed's last frame, flush and exit."""


# ---------------------------------------------------------------------------------- event pipes (events)
class WorkerReady(msgspec.Struct, frozen=True, tag=True):
    worker: int
    pid: int


class SignalRaised(msgspec.Struct, frozen=True, tag=True):
    """A strategy's signal. pos: its tick's feed position; held: the tick waited for an earlier signal's
    outcome; latency_ms: from the batch's arrival in the feed process; sent_at: the wall time it was written
    (the driver's figure of the hop to it)."""

    worker: int
    signal: Signal
    latency_ms: float
    held: bool
    pos: int
    sent_at: float = 0.0


class MarksTaken(msgspec.Struct, frozen=True, tag=True):
    """An open position's price on its first tick of a data-second, sequenced with signals at that tick's pos."""

    worker: int
    marks: Marks
    pos: int


class WatermarkReached(msgspec.Struct, frozen=True, tag=True):
    """Echo of frame seq's marker once everything before it is processed, held back to cap_ts/cap_pos (the
    earliest signal awaiting its outcome, or quotes not yet at the paper broker; inf when none)."""

    worker: int
    seq: int
    through_ts: Num  # a feed time or position (int), or inf
    through_pos: Num
    cap_ts: Num
    cap_pos: Num
    progress: WorkerProgress


class CheckpointTaken(msgspec.Struct, frozen=True, tag=True):
    """Strategy and handler state as of frame seq, to restart the worker from. JSON-safe data (str, numbers,
    None, bool, lists, str-keyed dicts): it crosses as msgpack, which has one array type (a tuple comes back a
    list) and refuses objects it does not know (pipeline.events.EventWriter.put raises TypeError)."""

    worker: int
    seq: int
    state: dict[str, Any]


class StrategyTurnedOff(msgspec.Struct, frozen=True, tag=True):
    """A symbol's strategy raised and is off for the day (sent once)."""

    worker: int
    event: StrategyDisabled


class WorkerStopped(msgspec.Struct, frozen=True, tag=True):
    worker: int
    stats: dict[str, Any]


WorkerEvent = (WorkerReady | SignalRaised | MarksTaken | WatermarkReached | CheckpointTaken | StrategyTurnedOff |
               WorkerStopped)

_event_encoder = msgspec.msgpack.Encoder()
_event_decoder: msgspec.msgpack.Decoder[WorkerEvent] = msgspec.msgpack.Decoder(WorkerEvent)


def encode_event(event: WorkerEvent) -> bytes:
    """A worker's event as it crosses its event pipe (tagged by its class name)."""
    return _event_encoder.encode(event)


def decode_event(buf: bytes) -> WorkerEvent:
    """encode_event's inverse. MessageError if the bytes are not one of the WorkerEvents."""
    try:
        return _event_decoder.decode(buf)
    except msgspec.DecodeError as e:
        raise MessageError(f"event pipe: {len(buf)} bytes that are no worker event ({e})") from None


# -------------------------------------------------------------------------------- feed process's reports
class FeedStarted(msgspec.Struct, frozen=True):
    pid: int


class FeedFailed(msgspec.Struct, frozen=True):
    """The feed could not start (no token, an unwritable recording, ...): the reason, for the operator."""

    reason: str


class CycleDelivered(msgspec.Struct, frozen=True):
    """After each cycle. sent: the workers given a frame (the others had nothing new); the counts are this
    cycle's; dropped and persisted are the feed process's running totals; rejected: (reason, count) of the
    ticks the feed's TickValidator refused in this cycle."""

    seq: int
    through_ts: int
    through_pos: int
    sent: tuple[int, ...]
    ticks: int
    unroutable: int
    not_ticks: int
    feed_time: int
    final: bool
    dropped: int
    rejected: tuple[tuple[str, int], ...]
    persisted: int = 0  # ticks the feed process has written to the database, a running total


class TicksResent(msgspec.Struct, frozen=True):
    """A restarted worker was sent again what came since its checkpoint."""

    worker: int
    ticks: int


FeedReport = FeedStarted | FeedFailed | CycleDelivered | TicksResent


# ------------------------------------------------------------------ driver's commands to the feed process
class SetLowWatermark(msgspec.Struct, frozen=True):
    """How far trading decisions have got (feed time): the feed waits while it is too far ahead."""

    ts: float


class ForgetThrough(msgspec.Struct, frozen=True):
    """The worker checkpointed as of frame seq: the frames it was sent up to there need not be kept."""

    worker: int
    seq: int


class MarkWorkerDown(msgspec.Struct, frozen=True):
    worker: int


class ReplaceTickPipe(msgspec.Struct, frozen=True):
    """The worker was restarted: resend what it was sent since its checkpoint into this pipe, then go on."""

    worker: int
    pipe: Any


class StopFeed(msgspec.Struct, frozen=True):
    pass


FeedCommand = SetLowWatermark | ForgetThrough | MarkWorkerDown | ReplaceTickPipe | StopFeed
