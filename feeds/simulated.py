"""A stand-in for fyers_apiv3's FyersDataSocket that replays ticks from a source instead of the network.

Why: replay must drive the daemon through the same calls, callbacks and message shapes as the live
socket, including its awkward parts, so that code which works here works live:
- connect() sends {'type':'cn',...} and {'type':'ful',...} through on_message, then calls on_connect;
- only subscribed symbols are delivered; subscribe acks with {'type':'sub',...} and sends a snapshot (the
  last state) of each newly subscribed symbol that has traded, as the real server does;
- unsubscribe only accepts symbols of the most recent subscribe call (the SDK 3.2.0 bug);
- a dropped connection reconnects after a delay and does NOT resubscribe by itself: ticks that arrive
  while down or unsubscribed are lost (counted in `missed`) until on_connect subscribes again;
- an exception raised by on_message goes to on_error, like the SDK.

Time is the ticks' own: `speed` None/'max' replays as fast as the consumer takes it, 1.0 paces by
exch_feed_time in real time, any other number is a multiple of real time. A paced replay spreads each
second's ticks evenly over that second, as a live feed delivers them (feed times are whole seconds; sending a
second's ticks in one burst at its start would load the daemon as no live day does). Reconnect delays and
scheduled disconnects are in feed seconds, so a replay with faults is as deterministic as one without.
All callbacks run on one replay thread (subscribe/unsubscribe/disconnect from other threads are handed
to it), which is what the live SDK does with its websocket thread.
"""
from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from core.clock import Clock, fmt_ist
from core.types import FyersTick, TickColumns

log = logging.getLogger(__name__)

TickSource = Iterable[FyersTick] | Callable[[], Iterator[FyersTick]]

AUTH_OK = {"type": "cn", "code": 200, "message": "Authentication done", "s": "ok"}
FULL_MODE_OK = {"type": "ful", "code": 200, "message": "Full Mode On", "s": "ok"}
SUBSCRIBED = {"type": "sub", "code": 200, "message": "Subscribed", "s": "ok"}
UNSUBSCRIBED = {"type": "unsub", "code": 200, "message": "Unsubscribed", "s": "ok"}
CLOSED = {"code": 200, "message": "Connection Closed", "s": "ok"}
INVALID_SYMBOL = {"code": -300, "message": "Please provide a valid symbol", "s": "error"}
TOO_MANY_SYMBOLS = {"code": -99, "message": "Please provide less than 5000 symbols", "s": "error"}
SYMBOL_LIMIT = 5000


def parse_speed(speed: float | str | None) -> float | None:
    """None for as fast as possible ('max' or None), else a positive multiple of real time."""
    if speed is None or (isinstance(speed, str) and speed.strip().lower() == "max"):
        return None
    try:
        value = float(speed)
    except (TypeError, ValueError):
        raise ValueError(f"speed {speed!r} is not allowed -- use max or a positive number") from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"speed {speed!r} is not allowed -- use max or a positive number")
    return value


class SimulatedWebSocket:
    """Replays a tick source through the FyersDataSocket interface (see the module docstring)."""

    def __init__(self, source: TickSource, *, on_connect: Callable[[], Any] | None = None,
                 on_message: Callable[[dict], Any] | None = None, on_error: Callable[[Any], Any] | None = None,
                 on_close: Callable[[dict], Any] | None = None, speed: float | str | None = None,
                 start_after: int | None = None, clock: Clock | None = None, reconnect: bool = True,
                 reconnect_delay_s: float = 5.0, on_done: Callable[[], Any] | None = None,
                 disconnects: Iterable[tuple[int, float]] = (), control_timeout_s: float = 10.0,
                 on_idle: Callable[[int], Any] | None = None,
                 on_columns: Callable[[TickColumns], Any] | None = None):
        self._source = source
        # ticks as TickColumns, a window at a time, when the source can give them (feeds.synthetic.SyntheticDay)
        # and the replay runs at full speed with no clock to move: the same ticks as on_message would get
        self.on_columns = on_columns
        self.on_connect = on_connect
        self.on_message = on_message or (lambda msg: None)
        self.on_error = on_error or (lambda err: log.warning("simulated socket error: %s", err))
        self.on_close = on_close
        self.on_done = on_done
        # paced replay only: called with second T before waiting for the time of second T+1, when every tick
        # up to T has gone to on_message (a live socket cannot know that; replay can, and says so)
        self.on_idle = on_idle
        self.speed = parse_speed(speed)
        self.start_after = start_after
        self.clock = clock
        self.reconnect = reconnect
        self.reconnect_delay_s = float(reconnect_delay_s)
        self.control_timeout_s = control_timeout_s
        # subscription state: swapped whole (never mutated in place) so the replay loop needs no lock
        self._active: frozenset[str] = frozenset()    # subscribed on the current connection
        self._wanted: frozenset[str] = frozenset()    # asked for and not unsubscribed: undelivered = missed
        self._last_call: frozenset[str] = frozenset()  # symbols of the latest subscribe call
        self._last_state: dict[str, FyersTick] = {}
        self._connected = False
        self._opened = False
        self._stop = False
        self._close_requested = False
        self._close_sent = False
        self._ops: list[tuple[tuple, threading.Event]] = []
        self._ops_flag = False
        self._lock = threading.Lock()                 # guards _ops and _running only
        self._wake = threading.Event()
        self._ready = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._running = False
        self._schedule: list[tuple[int, float]] = sorted((int(at), float(d)) for at, d in disconnects)
        self._down_until: float | None = None
        self._now_ts: int | None = None
        # counters (the tick counters are published at each new feed second and at the end)
        self.delivered = 0     # ticks passed to on_message
        self.missed = 0        # ticks of wanted symbols lost while down or not resubscribed
        self.filtered = 0      # ticks of symbols never subscribed (or unsubscribed)
        self.skipped = 0       # ticks at or before start_after
        self.snapshots = 0     # last-state messages sent after a subscribe
        self.disconnects = 0
        self.reconnects = 0

    # ---------------------------------------------------------------- FyersDataSocket interface

    def connect(self) -> None:
        """Open the simulated connection: auth and mode acks, then on_connect (on the replay thread)."""
        if self._close_requested:
            raise RuntimeError("this simulated socket was closed; create a new one to replay again")
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="simulated-feed", daemon=True)
        with self._lock:
            self._running = True
        self._thread.start()
        if threading.current_thread() is not self._thread:
            self._ready.wait(self.control_timeout_s)

    def subscribe(self, symbols: list[str], data_type: str = "SymbolUpdate", channel: int = 11) -> None:
        self._check_data_type(data_type)
        self._control(("sub", tuple(dict.fromkeys(symbols))))

    def unsubscribe(self, symbols: list[str], data_type: str = "SymbolUpdate", channel: int = 11) -> None:
        self._check_data_type(data_type)
        self._control(("unsub", tuple(dict.fromkeys(symbols))))

    def close_connection(self) -> None:
        """Stop the replay and close; on_close gets {'code':200,'message':'Connection Closed','s':'ok'}."""
        if self._close_requested:
            return
        self._close_requested = True
        self._stop = True
        self._ops_flag = True
        self._wake.set()
        t = self._thread
        if t is None or not t.is_alive():
            self._finish_close()
        elif threading.current_thread() is not t:
            t.join(self.control_timeout_s)  # the replay thread sends on_close as it ends

    def is_connected(self) -> bool:
        """As the SDK: True while waiting to reconnect too (see `connected` for the real state)."""
        return self._connected or (self._down_until is not None and not self._close_requested)

    @property
    def connected(self) -> bool:
        """Whether the simulated line is up right now."""
        return self._connected

    def keep_running(self) -> None:
        """The SDK's keep-alive helper; a daemon has its own main loop, so this does nothing here."""

    # ---------------------------------------------------------------- faults and progress

    def disconnect(self, down_s: float | None = None) -> None:
        """Drop the connection now (as a server or network failure would); it reconnects after
        `down_s` feed seconds (default reconnect_delay_s) and waits for on_connect to resubscribe."""
        self._control(("drop", self.reconnect_delay_s if down_s is None else float(down_s)))

    def schedule_disconnect(self, at: int, down_s: float | None = None) -> None:
        """Drop the connection when the replay reaches feed time `at` (epoch seconds): deterministic."""
        self._control(("schedule", int(at), self.reconnect_delay_s if down_s is None else float(down_s)))

    @property
    def finished(self) -> bool:
        """True once every tick of the source has been replayed (or the replay was closed)."""
        return self._done.is_set()

    def wait_done(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def stats(self) -> dict[str, Any]:
        return {"connected": self._connected, "finished": self.finished, "delivered": self.delivered,
                "missed": self.missed, "filtered": self.filtered, "skipped": self.skipped,
                "snapshots": self.snapshots, "disconnects": self.disconnects, "reconnects": self.reconnects,
                "subscribed": len(self._active), "feed_time": self._now_ts}

    # ---------------------------------------------------------------- control operations

    @staticmethod
    def _check_data_type(data_type: str) -> None:
        if data_type != "SymbolUpdate":
            raise ValueError(f"data_type {data_type!r} is not supported by the simulated socket -- "
                             "it replays SymbolUpdate ticks")

    def _control(self, op: tuple) -> None:
        """Apply on the replay thread: at once when called from it, else hand it over and wait."""
        if threading.current_thread() is self._thread:
            self._apply(op)
            return
        done = threading.Event()
        with self._lock:
            queued = self._running
            if queued:
                self._ops.append((op, done))
                self._ops_flag = True
        if not queued:
            self._apply(op)
            return
        self._wake.set()
        if not done.wait(self.control_timeout_s):
            log.warning("simulated socket: %s not applied within %.0fs (replay thread busy in a callback?)",
                        op[0], self.control_timeout_s)

    def _process_ops(self) -> None:
        with self._lock:
            ops, self._ops = self._ops, []
            self._ops_flag = self._stop
        for op, done in ops:
            try:
                self._apply(op)
            finally:
                done.set()

    def _apply(self, op: tuple) -> None:
        kind = op[0]
        if kind == "sub":
            self._do_subscribe(op[1])
        elif kind == "unsub":
            self._do_unsubscribe(op[1])
        elif kind == "drop":
            self._drop(op[1])
        elif kind == "schedule":
            self._schedule.append((op[1], op[2]))
            self._schedule.sort()

    def _emit(self, msg: dict) -> None:
        try:
            self.on_message(msg)
        except Exception as e:  # noqa: BLE001 - the SDK hands callback errors to on_error
            self.on_error(e)

    def _do_subscribe(self, symbols: tuple[str, ...]) -> None:
        if not self._opened:
            log.warning("simulated socket: subscribe() before connect() does nothing (as in the Fyers SDK)")
            return
        if len(symbols) > SYMBOL_LIMIT or len(self._active | set(symbols)) > SYMBOL_LIMIT:
            self.on_error(dict(TOO_MANY_SYMBOLS))
            return
        self._wanted = self._wanted | set(symbols)
        self._last_call = frozenset(symbols)
        if not self._connected:
            log.debug("simulated socket: subscribe while disconnected is lost (as in the Fyers SDK)")
            return
        new = [s for s in symbols if s not in self._active]
        self._active = self._active | set(symbols)
        self._emit(dict(SUBSCRIBED))
        for s in new:
            snap = self._last_state.get(s)
            if snap is not None:
                self.snapshots += 1
                self._emit(dict(snap))

    def _do_unsubscribe(self, symbols: tuple[str, ...]) -> None:
        if not self._opened:
            return
        valid = [s for s in symbols if s in self._last_call]
        if not valid:
            self.on_error(dict(INVALID_SYMBOL))
            return
        if len(valid) < len(symbols):
            log.warning("simulated socket: unsubscribe ignored %d symbol(s) not in the most recent subscribe "
                        "call (Fyers SDK 3.2.0 behaviour)", len(symbols) - len(valid))
        gone = set(valid)
        self._active = self._active - gone
        self._wanted = self._wanted - gone
        self._last_call = self._last_call - gone
        if self._connected:
            self._emit(dict(UNSUBSCRIBED))

    def _drop(self, down_s: float) -> None:
        if not self._connected:
            return
        self._connected = False
        self._active = frozenset()
        self.disconnects += 1
        log.warning("simulated socket: connection dropped at feed time %s%s", _when(self._now_ts),
                    f"; reconnecting after {down_s:g}s of feed time" if self.reconnect else "")
        if self.reconnect:
            self._down_until = (self._now_ts or 0) + down_s
        elif self.on_close is not None:
            self.on_close(dict(CLOSED))

    def _open(self) -> None:
        """A (re)connection: the server's acks, then on_connect, where the client must subscribe."""
        self._connected = True
        self._opened = True
        self._down_until = None
        self._emit(dict(AUTH_OK))
        self._emit(dict(FULL_MODE_OK))
        if self.on_connect is not None:
            try:
                self.on_connect()
            except Exception as e:  # noqa: BLE001 - as the SDK does
                self.on_error(e)

    # ---------------------------------------------------------------- the replay thread

    def _idle(self, timeout: float | None) -> None:
        self._wake.wait(timeout)
        self._wake.clear()
        if self._ops_flag:
            self._process_ops()

    def _source_iter(self) -> Iterator[FyersTick]:
        src = self._source
        if callable(src) and not hasattr(src, "__iter__"):
            src = src()
        return iter(src)

    def _run(self) -> None:
        try:
            self._open()
            self._ready.set()
            while not self._stop and not self._active:   # the day starts for this client at its subscribe
                self._idle(0.5)
            if not self._stop:
                self._replay()
        except Exception as e:  # noqa: BLE001 - a broken source must not vanish silently
            log.exception("simulated socket: replay stopped by an error")
            self.on_error(e)
        finally:
            self._ready.set()
            with self._lock:
                self._running = False
            self._process_ops()
            self._done.set()
            if self._close_requested:
                self._finish_close()
            elif self.on_done is not None:
                try:
                    self.on_done()
                except Exception:  # noqa: BLE001
                    log.exception("simulated socket: on_done failed")

    def _finish_close(self) -> None:
        with self._lock:
            send = self._opened and not self._close_sent
            self._close_sent = True
        self._connected = False
        self._active = frozenset()
        self._done.set()
        if send and self.on_close is not None:
            self.on_close(dict(CLOSED))

    def _replay(self) -> None:
        if self.on_columns is not None and self.speed is None and self.clock is None:
            src = self._source
            if callable(src) and not hasattr(src, "__iter__"):
                src = src()
            windows = getattr(src, "windows", None)
            if windows is not None:
                self._replay_columns(windows())
                return
            self._source = src
        on_message, on_error = self.on_message, self.on_error
        last_state = self._last_state
        speed, clock = self.speed, self.clock
        sa = self.start_after
        delivered = missed = filtered = skipped = 0
        last_ts: Any = object()
        skipping = False
        t0 = w0 = None
        ticks = self._source_iter()
        paced = zip(ticks, itertools.repeat(0.0)) if speed is None else _spread(ticks)
        try:
            for tick, frac in paced:
                if self._ops_flag:
                    self._process_ops()
                    if self._stop:
                        break
                ts = tick.get("exch_feed_time", last_ts)
                if frac and ts == last_ts and t0 is not None and not skipping:
                    self._pace(w0 + (ts - t0 + frac) / speed)
                    if self._stop:
                        break
                if ts != last_ts:
                    last_ts = ts
                    self.delivered, self.missed, self.filtered, self.skipped = delivered, missed, filtered, skipped
                    skipping = sa is not None and isinstance(ts, int) and ts <= sa
                    if not skipping and isinstance(ts, (int, float)):
                        if self._now_ts is None or ts > self._now_ts:
                            done, self._now_ts = self._now_ts, ts
                            if speed is not None:
                                if t0 is None:
                                    t0, w0 = ts, time.monotonic()
                                self._pace(w0 + (ts - t0) / speed, done)
                                if self._stop:
                                    break
                            if clock is not None:
                                clock.advance(ts)
                            if self._schedule or self._down_until is not None:
                                self._faults(ts)
                if skipping:
                    skipped += 1
                    continue
                sym = tick.get("symbol")
                last_state[sym] = tick
                if sym in self._active:
                    delivered += 1
                    try:
                        on_message(tick)
                    except Exception as e:  # noqa: BLE001 - as the SDK does
                        on_error(e)
                elif sym in self._wanted:
                    missed += 1
                else:
                    filtered += 1
            else:
                if self._down_until is not None and self.reconnect:
                    self._open_again()
        finally:
            self.delivered, self.missed, self.filtered, self.skipped = delivered, missed, filtered, skipped

    def _replay_columns(self, windows: Iterator[TickColumns]) -> None:
        """_replay for a source of TickColumns at full speed: the same skipping, subscriptions, counts,
        last states and faults, a run of rows at a time (a window is cut where a fault falls due)."""
        sa = self.start_after
        for cols in windows:
            if self._ops_flag:
                self._process_ops()
            if self._stop:
                return
            eft = cols.values["exch_feed_time"]
            n = len(cols)
            lo = 0 if sa is None else int(np.searchsorted(eft, sa, side="right"))  # rows in time order
            self.skipped += lo
            while lo < n:
                due = [t for t in (self._schedule[0][0] if self._schedule else None, self._down_until)
                       if t is not None]
                hi = n if not due else lo + int(np.searchsorted(eft[lo:], min(due), side="left"))
                if hi == lo:  # a fault falls due at this row's time: as _replay, before the row goes on
                    ts = int(eft[lo])
                    self._now_ts = ts if self._now_ts is None else max(self._now_ts, ts)
                    self._faults(ts)
                    continue
                self._deliver_columns(cols, lo, hi)
                lo = hi
        if self._down_until is not None and self.reconnect:
            self._open_again()

    def _deliver_columns(self, cols: TickColumns, lo: int, hi: int) -> None:
        run = cols.slice(lo, hi)
        top = int(run.values["exch_feed_time"].max())
        self._now_ts = top if self._now_ts is None else max(self._now_ts, top)
        codes = run.symbol
        active = np.fromiter((s in self._active for s in cols.names), dtype=bool, count=len(cols.names))
        wanted = np.fromiter((s in self._wanted for s in cols.names), dtype=bool, count=len(cols.names))
        on = active[codes]
        k = int(on.sum())
        missed = int((~on & wanted[codes]).sum())
        self.delivered += k
        self.missed += missed
        self.filtered += len(run) - k - missed
        last = len(codes) - 1 - np.unique(codes[::-1], return_index=True)[1]
        for j in last.tolist():  # each symbol's last state, for a snapshot on a later subscribe
            t = run.tick(j)
            self._last_state[t["symbol"]] = t
        if k:
            try:
                self.on_columns(run if k == len(run) else run.take(on))  # type: ignore[misc]
            except Exception as e:  # noqa: BLE001 - as the SDK does with on_message
                self.on_error(e)

    def _faults(self, ts: int) -> None:
        while self._schedule and self._schedule[0][0] <= ts:
            _, down_s = self._schedule.pop(0)
            self._drop(down_s)
        if self._down_until is not None and ts >= self._down_until:
            self._open_again()

    def _open_again(self) -> None:
        self.reconnects += 1
        log.info("simulated socket: reconnected at feed time %s", _when(self._now_ts))
        self._open()

    def _pace(self, target: float, done: int | None = None) -> None:
        if self.on_idle is not None and done is not None and target > time.monotonic():
            try:
                self.on_idle(done)
            except Exception as e:  # noqa: BLE001 - as for on_message
                self.on_error(e)
        while not self._stop:
            delay = target - time.monotonic()
            if delay <= 0:
                return
            self._idle(delay)


def _spread(ticks: Iterator[FyersTick]) -> Iterator[tuple[FyersTick, float]]:
    """Each tick with its place in its second (k/n for the k-th of n), reading one second ahead."""
    second: list[FyersTick] = []
    current: Any = object()
    for tick in ticks:
        ts = tick.get("exch_feed_time") if type(tick) is dict else None
        if ts != current and second:
            n = len(second)
            yield from zip(second, (k / n for k in range(n)), strict=False)
            second = []
        current = ts
        second.append(tick)
    n = len(second)
    yield from zip(second, (k / n for k in range(n)), strict=False)


def _when(ts: int | None) -> str:
    return "?" if ts is None else fmt_ist(ts)


def simulated_feed(source: TickSource, tickers: list[str], *, on_tick: Callable[[FyersTick], Any] | None = None,
                   on_ticks: Callable[[list[FyersTick]], Any] | None = None, speed: float | str | None = None,
                   start_after: int | None = None, clock: Clock | None = None,
                   on_done: Callable[[], Any] | None = None, disconnects: Iterable[tuple[int, float]] = (),
                   **client_kw: Any) -> Any:
    """The live feed's client code (feeds.fyers.FeedClient: subscribe on connect, consumer thread,
    bounded close) driving a SimulatedWebSocket, so a replay runs the same path as LIVE_DATA=true.
    `disconnects` are (feed time, down seconds) faults to inject. The watchdog is off unless
    `stale_after_s` is given. The socket is `feed.socket` once started."""
    from feeds.fyers import FeedClient

    def make_socket(**callbacks: Any) -> SimulatedWebSocket:
        return SimulatedWebSocket(source, speed=speed, start_after=start_after, clock=clock, on_done=on_done,
                                  disconnects=disconnects, **callbacks)

    client_kw.setdefault("stale_after_s", None)
    client = FeedClient(make_socket, tickers, on_tick=on_tick, on_ticks=on_ticks, **client_kw)
    client.name = "replay-feed"
    return client


__all__ = ["SimulatedWebSocket", "simulated_feed", "parse_speed", "TickSource", "AUTH_OK", "FULL_MODE_OK", "SUBSCRIBED",
           "UNSUBSCRIBED", "CLOSED"]
