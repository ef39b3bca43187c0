"""SimulatedWebSocket: the FyersDataSocket interface over a tick source, faults included."""
from __future__ import annotations

import itertools
import threading
import time
from datetime import date

import pytest

from core.clock import ReplayClock
from feeds.simulated import AUTH_OK, CLOSED, FULL_MODE_OK, SUBSCRIBED, SimulatedWebSocket, parse_speed, simulated_feed
from feeds.synthetic import generate_day

TICKERS = ["NSE:SBIN-EQ", "NSE:INFY-EQ", "NSE:TCS-EQ"]


@pytest.fixture(scope="module")
def ticks():
    return list(itertools.islice(generate_day(TICKERS, date(2024, 3, 5), seed=9), 6000))


class Client:
    """What a daemon adapter does: subscribe in on_connect (optionally only the first time)."""

    def __init__(self, source, symbols, resubscribe=True, **kw):
        self.symbols, self.resubscribe = symbols, resubscribe
        self.messages: list[dict] = []
        self.errors: list = []
        self.closed: list[dict] = []
        self.connects = 0
        self.ws = SimulatedWebSocket(source, on_connect=self.on_connect, on_message=self.messages.append,
                                     on_error=self.errors.append, on_close=self.closed.append, **kw)

    def on_connect(self):
        self.connects += 1
        if self.connects == 1 or self.resubscribe:
            self.ws.subscribe(self.symbols)

    @property
    def ticks(self):
        return [m for m in self.messages if "s" not in m]

    def run(self, timeout=10):
        self.ws.connect()
        assert self.ws.wait_done(timeout)
        return self


def test_control_messages_come_first_and_only_subscribed_symbols_are_delivered(ticks):
    c = Client(ticks, ["NSE:SBIN-EQ", "NSE:TCS-EQ"]).run()
    assert c.messages[:3] == [AUTH_OK, FULL_MODE_OK, SUBSCRIBED]
    want = [t for t in ticks if t["symbol"] in ("NSE:SBIN-EQ", "NSE:TCS-EQ")]
    assert c.ticks == want
    assert c.ws.delivered == len(want) and c.ws.filtered == len(ticks) - len(want) and c.ws.missed == 0
    assert c.ws.finished and c.ws.is_connected() and c.errors == []
    c.ws.close_connection()
    assert c.closed == [CLOSED] and not c.ws.is_connected()


def test_the_replay_waits_for_a_subscribe_made_after_connect(ticks):
    seen = []
    ws = SimulatedWebSocket(ticks, on_message=seen.append)
    ws.connect()
    assert seen == [AUTH_OK, FULL_MODE_OK] and not ws.finished  # nothing replayed before a subscription
    ws.subscribe(TICKERS)
    assert ws.wait_done(10)
    assert [m for m in seen if "s" not in m] == ticks


def test_a_factory_source_is_called_once_and_a_clock_follows_the_ticks(ticks):
    calls = []

    def factory():
        calls.append(1)
        return iter(ticks)
    clock = ReplayClock()
    c = Client(factory, TICKERS, clock=clock).run()
    assert calls == [1] and len(c.ticks) == len(ticks)
    assert clock.now() == ticks[-1]["exch_feed_time"]


def test_pacing_follows_the_tick_timestamps(ticks):
    t0 = ticks[0]["exch_feed_time"]
    window = [t for t in ticks if t["exch_feed_time"] < t0 + 30]
    seen_at: list[tuple[int, float]] = []
    clock = ReplayClock()

    def on_msg(m):
        if "s" not in m:
            seen_at.append((m["exch_feed_time"], clock.now()))
    ws = SimulatedWebSocket(window, on_message=on_msg, speed=300, clock=clock,
                            on_connect=lambda: ws.subscribe(TICKERS))
    start = time.monotonic()
    ws.connect()
    assert ws.wait_done(10)
    elapsed = time.monotonic() - start
    span = window[-1]["exch_feed_time"] - t0
    assert span >= 25 and elapsed >= span / 300  # 30 feed seconds at 300x take at least 0.1 s
    assert all(ts == now for ts, now in seen_at)  # the clock shows each tick's own time when it arrives
    assert len(seen_at) == len(window)


def test_start_after_resumes_a_day(ticks):
    cut = ticks[2500]["exch_feed_time"]
    c = Client(ticks, TICKERS, start_after=cut).run()
    assert c.ticks == [t for t in ticks if t["exch_feed_time"] > cut]
    assert c.ws.skipped == sum(t["exch_feed_time"] <= cut for t in ticks)


def _drop_window(ticks, at_index, down_s):
    at = ticks[at_index]["exch_feed_time"]
    return at, [t for t in ticks if at <= t["exch_feed_time"] < at + down_s]


def test_a_drop_without_resubscribe_loses_every_later_tick(ticks):
    at, _ = _drop_window(ticks, 2000, 5)
    c = Client(ticks, TICKERS, resubscribe=False)
    c.ws.schedule_disconnect(at, down_s=5)
    c.run()
    before = [t for t in ticks if t["exch_feed_time"] < at]
    assert c.ticks == before
    assert c.ws.missed == len(ticks) - len(before)
    assert c.ws.disconnects == 1 and c.ws.reconnects == 1 and c.connects == 2
    assert [m for m in c.messages if "s" in m].count(AUTH_OK) == 2  # the reconnect re-authenticates


def test_a_drop_with_resubscribe_loses_only_the_down_time_and_sends_snapshots(ticks):
    at, lost = _drop_window(ticks, 2000, 5)
    c = Client(ticks, TICKERS)
    c.ws.schedule_disconnect(at, down_s=5)
    c.run()
    after = [t for t in ticks if t["exch_feed_time"] >= at + 5]
    before = [t for t in ticks if t["exch_feed_time"] < at]
    assert c.ws.missed == len(lost) and c.ws.delivered == len(before) + len(after)
    # after the resubscribe: the ack, then the last state of every symbol (as Fyers sends), then live ticks
    i = [k for k, m in enumerate(c.messages) if m == SUBSCRIBED][1]
    last_seen = {t["symbol"]: t for t in ticks if t["exch_feed_time"] < at + 5}
    snaps = c.messages[i + 1:i + 1 + len(TICKERS)]
    assert c.ws.snapshots == len(TICKERS)
    assert sorted(snaps, key=lambda t: t["symbol"]) == sorted(last_seen.values(), key=lambda t: t["symbol"])
    assert c.messages[i + 1 + len(TICKERS):] == after
    assert c.messages[:i] == [AUTH_OK, FULL_MODE_OK, SUBSCRIBED, *before, AUTH_OK, FULL_MODE_OK]


def test_disconnect_from_another_thread_is_counted_the_same_way(ticks):
    gate = threading.Event()

    def source():
        for i, t in enumerate(ticks):
            if i == 3000:
                gate.set()
                time.sleep(0.05)  # let the test's disconnect() land here
            yield t
    c = Client(source, TICKERS, reconnect_delay_s=2)
    c.ws.connect()
    assert gate.wait(10)
    c.ws.disconnect()
    assert c.ws.wait_done(10)
    assert c.ws.disconnects == 1 and c.ws.reconnects == 1
    assert c.ws.missed > 0 and c.ws.delivered + c.ws.missed == len(ticks)


def test_unsubscribe_has_the_sdk_bug_and_errors_in_on_message_go_to_on_error(ticks):
    errors, seen = [], []

    def on_msg(m):
        seen.append(m)
        if m.get("symbol") == "NSE:INFY-EQ":
            raise RuntimeError("consumer bug")

    def on_connect():
        ws.subscribe(["NSE:SBIN-EQ"])
        ws.subscribe(["NSE:INFY-EQ"])
        ws.unsubscribe(["NSE:SBIN-EQ"])  # not in the most recent subscribe call: refused, as the SDK does
    ws = SimulatedWebSocket(ticks[:300], on_message=on_msg, on_error=errors.append, on_connect=on_connect)
    ws.connect()
    assert ws.wait_done(10)
    assert {"code": -300, "message": "Please provide a valid symbol", "s": "error"} in errors
    n = {s: sum(t["symbol"] == s for t in ticks[:300]) for s in TICKERS}
    assert sum(isinstance(e, RuntimeError) for e in errors) == n["NSE:INFY-EQ"]  # the replay went on
    assert ws.delivered == n["NSE:INFY-EQ"] + n["NSE:SBIN-EQ"]
    ws.unsubscribe(["NSE:INFY-EQ"])
    assert seen[-1] == {"type": "unsub", "code": 200, "message": "Unsubscribed", "s": "ok"}


def test_speed_values():
    assert parse_speed(None) is None and parse_speed("max") is None and parse_speed(" MAX ") is None
    assert parse_speed("10") == 10.0 and parse_speed(0.5) == 0.5
    for bad in ("0", "-1", "fast", float("inf")):
        with pytest.raises(ValueError, match="speed"):
            parse_speed(bad)


def test_the_live_client_code_replays_deterministically_through_the_simulated_socket(ticks):
    at = ticks[3000]["exch_feed_time"]

    def run():
        got: list[dict] = []
        feed = simulated_feed(ticks, TICKERS, on_ticks=got.extend, disconnects=[(at, 3)])
        feed.start()
        assert feed.socket.wait_done(10) and feed.wait_delivered(10)
        feed.stop()
        return got, feed
    got1, feed1 = run()
    got2, _ = run()
    assert got1 == got2
    assert feed1.finished and feed1.last_time == ticks[-1]["exch_feed_time"]
    s = feed1.stats()
    assert s["connections"] == 2 and s["subscribe_calls"] == 2 and s["subscribe_acks"] == 2
    lost = sum(at <= t["exch_feed_time"] < at + 3 for t in ticks)
    assert feed1.socket.missed == lost and len(got1) == len(ticks) - lost + len(TICKERS)  # + snapshots
