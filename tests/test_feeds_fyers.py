"""The live Fyers adapter: token checks, the SDK's message shapes (contract tests through the SDK's own
binary parser), and the real SDK against a local fake HSM server: drop, reconnect, resubscribe,
watchdog, bounded stop, and a clear error when the socket cannot authenticate.

The SDK's FyersDataSocket is a per-process singleton, so the in-process tests reset it around each use
and the server scenarios run in their own interpreters (started together, run in parallel)."""
from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import types
from datetime import date

import pytest

from core.types import TICK_FIELDS
from feeds.fake_fyers import (
    NO_VALUE,
    auth_ok,
    custom_message,
    data_frame,
    fake_jwt,
    hsm_topic,
    mode_ok,
    snapshot_entry,
    subscribe_ok,
    update_entry,
)
from feeds.fyers import TICK_TYPES, FeedClient, FeedError, FyersFeed, check_token, socket_token, token_expiry
from feeds.synthetic import generate_day
from tests.conftest import ROOT, free_port

REFERENCE = {  # the observed example of fyers-datasocket.md §2.2
    "ltp": 812.55, "vol_traded_today": 1234567, "last_traded_time": 1700000000, "exch_feed_time": 1700000001,
    "bid_size": 100, "ask_size": 200, "bid_price": 812.5, "ask_price": 812.6, "last_traded_qty": 5,
    "tot_buy_qty": 10000, "tot_sell_qty": 20000, "avg_trade_price": 810.0, "low_price": 800.0,
    "high_price": 820.0, "lower_ckt": 0, "upper_ckt": 0, "open_price": 805.0, "prev_close_price": 800.0,
    "type": "sf", "symbol": "NSE:SBIN-EQ", "ch": 12.55, "chp": 1.5688}


# ---------------------------------------------------------------- the token

def test_token_checks_refuse_expired_and_nearly_expired_tokens_without_echoing_them():
    now = 1_700_000_000
    good = fake_jwt(now + 7200, hsm_key="hsm-secret")
    assert token_expiry(good) == now + 7200 and check_token(good, 1800, now=now) == now + 7200
    expired = fake_jwt(now - 60, hsm_key="hsm-secret")
    with pytest.raises(FeedError, match="expired at") as e1:
        check_token(expired, now=now)
    with pytest.raises(FeedError, match="in 10 minutes") as e2:
        check_token(fake_jwt(now + 600, hsm_key="hsm-secret"), 1800, now=now)
    with pytest.raises(FeedError, match="not a Fyers access token") as e3:
        token_expiry("garbage-token-value")
    with pytest.raises(FeedError, match="no hsm_key"):
        token_expiry(good.split(".")[0] + ".eyJleHAiOiAxfQ.x")
    for e, tok in ((e1, expired), (e2, "hsm-secret"), (e3, "garbage-token-value")):
        assert tok not in str(e.value) and "hsm-secret" not in str(e.value)


def test_socket_token_is_app_id_colon_jwt():
    assert socket_token("ABC-100", "eyJ.x.y") == "ABC-100:eyJ.x.y"
    assert socket_token("ABC-100", "ABC-100:eyJ.x.y") == "ABC-100:eyJ.x.y"
    with pytest.raises(FeedError, match="not FYERS_APP_ID"):
        socket_token("ABC-100", "XYZ-100:eyJ.x.y")
    with pytest.raises(FeedError, match="FYERS_APP_ID"):
        socket_token("", "eyJ.x.y")


def test_fyers_feed_refuses_an_expired_token_before_touching_the_network(tmp_path):
    token = fake_jwt(time.time() - 10)
    with pytest.raises(FeedError, match="expired") as e:
        FyersFeed("ABC-100", token, ["NSE:SBIN-EQ"], on_tick=print, log_dir=tmp_path)
    assert token not in str(e.value)
    feed = FyersFeed("ABC-100", fake_jwt(time.time() + 86400), ["NSE:SBIN-EQ"], on_tick=print, log_dir=tmp_path)
    assert "eyJ" not in repr(feed)


# ---------------------------------------------------------------- the watchdog's rules (pure logic)

class _Line:
    """Only what the watchdog touches: a socket it can tell to drop the connection."""

    def __init__(self) -> None:
        self.drops = 0
        self.subscribes = 0

    def disconnect(self) -> None:
        self.drops += 1

    def subscribe(self, symbols: list[str], data_type: str) -> None:
        self.subscribes += 1

    def close_connection(self) -> None:
        pass


def _silent_for(client: FeedClient, seconds: float) -> None:
    """As if `seconds` had passed without a tick (the watchdog's clocks moved back instead of sleeping)."""
    client._last_rx_seen = client.received
    client._last_rx_change -= seconds
    client._last_restart -= seconds
    client._auth_at -= seconds


def test_the_watchdog_leaves_a_new_connection_alone_until_its_subscription_is_acknowledged():
    client = FeedClient(lambda **_: None, ["NSE:SBIN-EQ"], on_tick=print, stale_after_s=1.0, connect_timeout_s=5)
    client.socket = line = _Line()
    client._on_message({"type": "cn", "s": "ok"})
    client.subscribed_gen = 1
    client._on_message({"type": "sub", "s": "ok"})
    _silent_for(client, 2)
    client._check()
    assert line.drops == 1                        # a subscribed line, silent: dropped
    client._on_message({"type": "cn", "s": "ok"})  # the next connection authenticated; its subscribe is on the way
    _silent_for(client, 2)
    client._check()
    assert line.drops == 1                        # not silence: it has not been asked for ticks yet
    _silent_for(client, 9)                        # ... for longer than start() would wait for an ack
    client._check()
    assert line.drops == 2
    client.stop()  # joins the subscribe the late connection got from the watchdog, on a thread of its own
    assert line.subscribes == 1
    assert not [t.name for t in client._threads if t.is_alive()]


def test_a_reconnect_thread_not_started_yet_is_not_taken_for_the_sdk_giving_up(tmp_path):
    feed = FyersFeed("ABC-100", fake_jwt(time.time() + 86400), ["NSE:SBIN-EQ"], on_tick=print, log_dir=tmp_path)
    connects = []
    sdk = types.SimpleNamespace(_FyersDataSocket__ws_object=None, connect=lambda: connects.append(1),
                                ws_thread=threading.Thread(target=lambda: None), close_connection=lambda: None)
    feed.socket = sdk
    assert feed._force_reconnect() is None and connects == []   # the SDK is between creating and starting it
    sdk.ws_thread.start()
    sdk.ws_thread.join()
    assert feed._force_reconnect() == "connecting again (the SDK had stopped reconnecting)"
    deadline = time.monotonic() + 5
    while not connects and time.monotonic() < deadline:
        time.sleep(0.01)
    assert connects == [1]
    feed.stop()  # the connect thread it started is joined, not left running past the test
    assert not [t.name for t in feed._threads if t.is_alive()]


# ---------------------------------------------------------------- contract: the SDK's own parser

@pytest.fixture
def sdk(tmp_path):
    """A fresh SDK socket (the class is a singleton) whose parser we feed binary frames."""
    from fyers_apiv3.FyersWebsocket.data_ws import FyersDataSocket

    FyersDataSocket._instance = None
    out: list[dict] = []
    errors: list = []
    sock = FyersDataSocket(access_token="ABC-100:" + fake_jwt(time.time() + 3600), write_to_file=True,
                           log_path=str(tmp_path), on_message=out.append, on_error=errors.append)
    parse = sock._FyersDataSocket__response_msg
    yield sock, parse, out, errors
    FyersDataSocket._instance = None


def test_sdk_turns_frames_into_the_documented_dicts(sdk):
    sock, parse, out, errors = sdk
    topic = hsm_topic("NSE:SBIN-EQ")
    sock.symbol_token = {topic: "NSE:SBIN-EQ"}
    parse(auth_ok())
    parse(mode_ok())
    parse(subscribe_ok())
    assert out == [{"type": "cn", "code": 200, "message": "Authentication done", "s": "ok"},
                   {"type": "ful", "code": 200, "message": "Full Mode On", "s": "ok"},
                   {"type": "sub", "code": 200, "message": "Subscribed", "s": "ok"}]
    out.clear()
    parse(data_frame(1, [snapshot_entry(7, topic, REFERENCE)]))
    assert out == [REFERENCE] and tuple(out[0]) == TICK_FIELDS
    later = dict(REFERENCE, exch_feed_time=1700000005, bid_size=300)      # only time and quote changed
    parse(data_frame(2, [update_entry(7, later)]))
    parse(data_frame(3, [update_entry(7, later)]))                        # an identical repeat: suppressed
    assert out[1:] == [later] and tuple(out[1]) == TICK_FIELDS           # the whole state, not a delta
    parse(custom_message(51001, "Standard plan symbol limit", ref_type=4))
    assert errors == [{"type": "sub", "code": 51001, "message": "Standard plan symbol limit", "s": "error"}]
    for m in out:
        assert "s" not in m and m["type"] in TICK_TYPES


def test_sdk_leaves_out_absent_values_and_ch_when_there_is_no_previous_close(sdk):
    sock, parse, out, _ = sdk
    topic = hsm_topic("NSE:INFY-EQ")
    sock.symbol_token = {topic: "NSE:INFY-EQ"}
    tick = {k: v for k, v in REFERENCE.items() if k not in ("ask_price", "ask_size")}
    tick.update(symbol="NSE:INFY-EQ", prev_close_price=0.0)
    parse(data_frame(1, [snapshot_entry(3, topic, tick)]))
    (got,) = out
    assert "ask_price" not in got and "ask_size" not in got and "ch" not in got and "chp" not in got
    assert got["prev_close_price"] == 0.0 and NO_VALUE not in got.values()


def test_synthetic_ticks_are_exactly_what_the_sdk_would_produce(sdk):
    sock, parse, out, errors = sdk
    tickers = ["NSE:SBIN-EQ", "NSE:RELIANCE-EQ", "NSE:M&M-EQ", "NSE:BAJAJ-AUTO-EQ"]
    sock.symbol_token = {hsm_topic(s): s for s in tickers}
    ids: dict[str, int] = {}
    ticks = list(itertools.islice(generate_day(tickers, date(2024, 3, 5), seed=21), 20000))
    for t in ticks:
        topic = hsm_topic(t["symbol"])
        if topic in ids:
            parse(data_frame(1, [update_entry(ids[topic], t)]))
        else:
            ids[topic] = len(ids) + 1
            parse(data_frame(1, [snapshot_entry(ids[topic], topic, t)]))
    assert errors == [] and len(out) == len(ticks)
    assert out == ticks and all(tuple(a) == tuple(b) for a, b in zip(out, ticks, strict=False))


# ---------------------------------------------------------------- the real SDK against a fake server

SCENARIO = textwrap.dedent("""
    import io, itertools, json, logging, sys, threading, time
    from datetime import date
    logs = io.StringIO()
    logging.basicConfig(level=logging.DEBUG, stream=logs)
    from feeds.fake_fyers import FakeFyersServer, fake_jwt, patch_sdk_symbol_lookup
    from feeds.fyers import FyersFeed
    from feeds.synthetic import generate_day

    TK = ["NSE:SBIN-EQ", "NSE:TCS-EQ", "NSE:M&M-EQ"]
    ticks = list(itertools.islice(generate_day(TK, date(2024, 3, 5), seed=4), 90))

    def script(conn, topics):  # connection 0: ticks, then a dropped line; 1: ticks, then silence; 2: ticks
        conn.send_ticks(ticks[conn.index * 30:(conn.index + 1) * 30])
        if conn.index == 0:
            time.sleep(0.2)
            conn.drop()

    server = FakeFyersServer(on_subscribe=script)
    patch_sdk_symbol_lookup()
    token = fake_jwt(time.time() + 86400, hsm_key="hsm-SECRET-key")
    got, threads = [], set()
    def on_tick(t):
        threads.add(threading.current_thread().name)
        got.append(t)
    feed = FyersFeed("TEST-100", token, TK, on_tick=on_tick, log_dir=sys.argv[1], ws_url=server.url,
                     stale_after_s=1.0, connect_timeout_s=5, close_timeout_s=1)
    t0 = time.monotonic()
    feed.start()
    started = time.monotonic() - t0
    deadline = time.monotonic() + 45
    while len(got) < 90 and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = feed.stats()
    t1 = time.monotonic()
    feed.stop()
    stopped = time.monotonic() - t1
    text = logs.getvalue()
    print(json.dumps({
        "same_ticks": got == ticks, "n": len(got), "started_s": started, "stop_s": stopped, "stats": stats,
        "subscribe_calls": [c.subscribe_calls for c in server.connections],
        "topics": sorted(__import__("feeds.fake_fyers").fake_fyers.hsm_topic(s) for s in TK),
        "auth_headers": [c.headers.get("authorization") for c in server.connections],
        "threads": sorted(threads), "token_in_logs": token in text or "hsm-SECRET-key" in text,
        "watchdog_logged": "no tick for" in text, "sdk_log": __import__("os").path.exists(
            sys.argv[1] + "/fyersDataSocket.log")}))
""")

NO_SERVER = textwrap.dedent("""
    import io, json, logging, sys, time
    logs = io.StringIO()
    logging.basicConfig(level=logging.DEBUG, stream=logs)
    from feeds.fake_fyers import fake_jwt, patch_sdk_symbol_lookup
    from feeds.fyers import FeedError, FyersFeed
    patch_sdk_symbol_lookup()
    token = fake_jwt(time.time() + 86400, hsm_key="hsm-SECRET-key")
    feed = FyersFeed("TEST-100", token, ["NSE:SBIN-EQ"], on_tick=print, log_dir=sys.argv[1],
                     ws_url="ws://127.0.0.1:" + sys.argv[2], connect_timeout_s=1, close_timeout_s=1)
    t0 = time.monotonic()
    try:
        feed.start()
        error = None
    except FeedError as e:
        error = str(e)
    print(json.dumps({"error": error, "took_s": time.monotonic() - t0,
                      "token_in_logs": token in logs.getvalue() or "hsm-SECRET-key" in logs.getvalue()}))
""")


GAVE_UP = textwrap.dedent("""
    import io, itertools, json, logging, sys, time
    from datetime import date
    logs = io.StringIO()
    logging.basicConfig(level=logging.DEBUG, stream=logs)
    from feeds.fake_fyers import FakeFyersServer, fake_jwt, patch_sdk_symbol_lookup
    from feeds.fyers import FyersFeed
    from feeds.synthetic import generate_day

    TK = ["NSE:SBIN-EQ", "NSE:TCS-EQ"]
    ticks = list(itertools.islice(generate_day(TK, date(2024, 3, 5), seed=6), 20))

    def first(conn, topics):  # ticks, then the server goes away altogether
        conn.send_ticks(ticks[:10])
        time.sleep(0.2)
        server.stop_listening()
        conn.drop()

    server = FakeFyersServer(on_subscribe=first)
    patch_sdk_symbol_lookup()
    got = []
    feed = FyersFeed("TEST-100", fake_jwt(time.time() + 86400), TK, on_tick=got.append, log_dir=sys.argv[1],
                     ws_url=server.url, stale_after_s=1.0, connect_timeout_s=5, close_timeout_s=1,
                     reconnect_retry=1)
    feed.start()
    sdk = feed.socket
    def stopped():  # its retry thread ended; not merely created and about to start (ident None until started)
        t = sdk.ws_thread
        return sdk._FyersDataSocket__ws_object is None and t.ident is not None and not t.is_alive()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (len(got) == 10 and stopped()):
        time.sleep(0.05)
    gave_up = stopped()
    # the server comes back on the same address; only our watchdog can reconnect now
    again = FakeFyersServer(on_subscribe=lambda conn, topics: conn.send_ticks(ticks[10:]), port=server.port)
    deadline = time.monotonic() + 20
    while len(got) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = feed.stats()
    feed.stop()
    print(json.dumps({"gave_up": gave_up, "same_ticks": got == ticks, "n": len(got), "stats": stats,
                      "reconnected_by_watchdog": "connecting again" in logs.getvalue(),
                      "subscribe_calls": [c.subscribe_calls for c in again.connections]}))
""")


@pytest.fixture(scope="module")
def sdk_runs(tmp_path_factory):
    """The SDK scenarios, each in its own interpreter, one after the other (in parallel on a 2-core machine the
    SDK's own timing -- its 2 s connect sleep, the 1 s watchdog -- gets too tight to be deterministic)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    runs = (("scenario", SCENARIO, []), ("no_server", NO_SERVER, [str(free_port())]), ("gave_up", GAVE_UP, []))
    results = {}
    for name, code, args in runs:
        d = tmp_path_factory.mktemp(name)
        p = subprocess.Popen([sys.executable, "-c", code, str(d / "logs"), *args], cwd=d, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = p.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            pytest.fail(f"{name}: the process did not finish (a thread kept it alive?)\n{err[-3000:]}")
        assert p.returncode == 0, f"{name} failed:\n{err[-3000:]}"
        results[name] = json.loads(out.strip().splitlines()[-1])
    return results


def test_real_sdk_reconnects_resubscribes_and_the_watchdog_revives_a_silent_line(sdk_runs):
    r = sdk_runs["scenario"]
    assert r["same_ticks"] and r["n"] == 90  # every tick of all three connections, exactly as sent
    # one subscribe call with every symbol per connection: the drop and the watchdog each caused one
    assert all(len(calls) == 1 for calls in r["subscribe_calls"])
    assert [sorted(calls[0]) for calls in r["subscribe_calls"]] == [r["topics"]] * 3
    s = r["stats"]
    assert s["connections"] == 3 and s["subscribe_acks"] == 3 and s["watchdog_restarts"] >= 1
    assert r["watchdog_logged"]
    assert r["threads"] == ["fyers-feed-consumer"]  # ticks reach the handler off the socket thread
    assert r["auth_headers"] == [None, None, None]   # Fyers ignores auth sent as an HTTP header
    assert r["stop_s"] < 1.5                          # close_connection can take ~10 s; stop() does not wait
    assert not r["token_in_logs"] and r["sdk_log"]


def test_start_fails_clearly_when_the_socket_cannot_authenticate(sdk_runs):
    r = sdk_runs["no_server"]
    assert r["error"] and "did not authenticate" in r["error"] and "ConnectionRefusedError" in r["error"]
    assert "hsm-SECRET-key" not in r["error"] and not r["token_in_logs"]
    assert r["took_s"] < 10


def test_the_watchdog_reconnects_after_the_sdk_gives_up(sdk_runs):
    r = sdk_runs["gave_up"]
    assert r["gave_up"]  # reconnect_retry=1 against a server that is gone: the SDK stops trying, silently
    assert r["same_ticks"] and r["n"] == 20
    assert r["reconnected_by_watchdog"] and r["stats"]["watchdog_restarts"] >= 1
    assert r["stats"]["connections"] == 2 and len(r["subscribe_calls"]) == 1 and len(r["subscribe_calls"][0]) == 1
