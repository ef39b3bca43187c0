"""Notifications end to end through Apprise to a real local JSON webhook: content, levels, a hanging endpoint
that never delays the caller, storm summaries, a full queue that says what it dropped, config and .env checks."""
from __future__ import annotations

import logging
import statistics
import time
from decimal import Decimal

import pytest
import yaml

import driver
import notify
from core.config import ConfigError, load_config
from notify.config import Channel, NotificationsConfig, UrlSpec, channels, parse_notifications
from notify.events import (
    KINDS,
    DayClosed,
    Level,
    OrderRejected,
    PositionClosed,
    PositionOpened,
    TradingHalted,
)
from notify.notifier import Notifier
from tests.notify_receiver import Receiver


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


def make(cfg: NotificationsConfig, *urls: tuple[str, Level]) -> Notifier:
    n = Notifier(cfg, [Channel(f"urls[{i}] (json)", u, lvl, ()) for i, (u, lvl) in enumerate(urls)])
    n.start()
    return n


def rejected(i: int) -> OrderRejected:
    return OrderRejected("SBIN", "BUY", 10 + i, "entry", "insufficient margin")


def test_events_arrive_with_their_content_and_the_url_from_env_is_never_logged(receiver, monkeypatch, caplog):
    monkeypatch.setenv("NOTIFY_TEST_URL", receiver.url())
    cfg = parse_notifications({"urls": ["${NOTIFY_TEST_URL}"]}, [])
    caplog.set_level(logging.INFO)  # the daemon's level (urllib3 is held at WARNING there)
    n = notify.start(cfg)
    try:
        notify.emit(PositionOpened("SBIN", "LONG", 100, Decimal("812.5"), "orb"))
        notify.emit(PositionClosed("SBIN", "LONG", 100, Decimal("812.5"), Decimal("820.25"), Decimal("712.34"),
                                   "signal", Decimal("1000712.34")))
        notify.emit(TradingHalted("risk: daily loss limit reached"))
        receiver.wait_for(lambda: len(receiver.messages()) == 3)
    finally:
        notify.stop()
    opened, closed, halted = receiver.messages()
    assert opened["title"] == "Opened LONG SBIN" and opened["message"] == "LONG 100 SBIN @ 812.50 (orb)"
    assert opened["type"] == "info"
    assert closed["title"] == "Closed SBIN: +712.34"
    assert "812.50 -> 820.25, net +712.34 (signal)" in closed["message"]
    assert halted["type"] == "failure" and "daily loss limit" in halted["message"]  # critical
    assert n is not None and n.stats["urls[0] (json)"].sent == 3
    assert notify._current is None  # stopped: emit is a no-op again  # noqa: SLF001
    notify.emit(rejected(0))
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "urls[0] (json)" in logged and str(receiver.port) not in logged


def test_levels_per_event_and_per_url(receiver):
    cfg = parse_notifications({"events": {"position_opened": "off", "order_rejected": "critical"},
                               "min_level": "info"}, [])
    n = make(cfg, (receiver.url("hook"), Level.INFO), (receiver.url("crit"), Level.CRITICAL))
    try:
        n.emit(PositionOpened("SBIN", "LONG", 1, Decimal(1), "orb"))  # off
        n.emit(PositionClosed("SBIN", "LONG", 1, Decimal(1), Decimal(2), Decimal(1), "signal", Decimal(1)))  # info
        n.emit(rejected(0))  # raised to critical
        receiver.wait_for(lambda: len(receiver.messages("/hook")) == 2 and len(receiver.messages("/crit")) == 1)
    finally:
        n.close()
    assert [m["title"] for m in receiver.messages("/hook")] == ["Closed SBIN: +1.00", "Order rejected: BUY 10 SBIN"]
    assert [m["type"] for m in receiver.messages("/crit")] == ["failure"]


def test_a_hanging_endpoint_never_delays_the_caller(receiver):
    n = make(NotificationsConfig(storm_limit=1000), (receiver.url("hang"), Level.INFO),
             (receiver.url("hook"), Level.INFO))
    took = []
    try:
        for i in range(200):
            t0 = time.perf_counter()
            n.emit(rejected(i))
            took.append(time.perf_counter() - t0)
        receiver.wait_for(lambda: len(receiver.messages("/hook")) == 200)  # the healthy URL is not held up
        assert receiver.messages("/hang") == []
        t0 = time.monotonic()
        n.close(timeout_s=1.0)  # bounded, though the hanging URL still holds its first message
        assert time.monotonic() - t0 < 3.0
    finally:
        receiver.release.set()
    assert statistics.median(took) < 50e-6, f"median emit {statistics.median(took) * 1e6:.1f} us"
    # never the endpoint's time (it hangs; Apprise gives up after 4 s): at worst a thread switch on a loaded machine
    assert max(took) < 0.5, f"slowest emit {max(took) * 1e3:.2f} ms"
    assert n.stats["urls[0] (json)"].unsent_at_close > 0


def test_a_storm_is_rate_limited_and_summarised(receiver):
    n = make(NotificationsConfig(storm_limit=3, storm_window_s=1.0), (receiver.url(), Level.INFO))
    try:
        for i in range(15):
            n.emit(rejected(i))
        n.emit(TradingHalted("risk: drawdown"))  # another event is not held back by the storm
        receiver.wait_for(lambda: any("more" in m["title"] for m in receiver.messages()))
    finally:
        n.close()
    titles = [m["title"] for m in receiver.messages()]
    assert titles[:4] == ["Order rejected: BUY 10 SBIN", "Order rejected: BUY 11 SBIN",
                          "Order rejected: BUY 12 SBIN", "Trading halted"]
    summary = receiver.messages()[4]
    assert summary["title"] == "12 more order rejections"
    assert summary["message"].startswith("12 more order rejections in the last 1 s")
    assert summary["type"] == "warning"  # the level of what it stands for
    assert len(titles) == 5


def test_a_full_queue_counts_what_it_drops_and_says_so(receiver):
    n = make(NotificationsConfig(storm_limit=1000, queue_size=10), (receiver.url("hang"), Level.INFO))
    try:
        for i in range(40):
            n.emit(rejected(i))
        dropped = n.stats["urls[0] (json)"].dropped
        assert 40 - 10 - 1 <= dropped <= 40 - 10  # ten queued, maybe one taken by the sender
        receiver.release.set()
        receiver.wait_for(lambda: any("dropped" in m["title"] for m in receiver.messages("/hang")))
    finally:
        receiver.release.set()
        n.close()
    got = receiver.messages("/hang")
    note = next(m for m in got if "dropped" in m["title"])
    assert note["title"] == f"{dropped} notification(s) dropped"
    assert len(got) == 40 - dropped + 1


def test_no_notifier_no_urls_nothing_happens():
    assert notify.start(NotificationsConfig()) is None
    notify.emit(rejected(0))  # no notifier installed: nothing, no error


def test_config_checks():
    problems: list[str] = []
    parse_notifications({"urls": [{"url": "json://x/y", "min_level": "loud"}, 5], "events": {"nope": "info",
                         "order_failed": "sometimes"}, "storm_limit": 0, "extra": 1}, problems)
    text = "\n".join(problems)
    for want in ("notifications.urls[0].min_level: 'loud'", "notifications.urls[1]", "notifications.events.nope",
                 "notifications.events.order_failed: 'sometimes'", "notifications.storm_limit: 0",
                 "notifications.extra: unknown key"):
        assert want in text
    ok = parse_notifications({"events": {"day_closed": False, "feed_silent": "warning"}}, [])
    assert ok.level_of("day_closed") is None and ok.level_of("feed_silent") is Level.WARNING
    assert ok.level_of("trading_halted") is Level.CRITICAL
    assert set(KINDS) >= {"daemon_started", "daemon_ready", "order_rejected", "order_failed", "position_opened",
                          "position_closed", "cap_crossed", "exits_forced", "trading_halted", "breaker_opened",
                          "breaker_closed", "feed_silent", "feed_resumed", "worker_restarted",
                          "reconciliation_mismatched", "day_closed"}


def test_urls_resolve_from_env_and_an_unusable_one_is_masked():
    cfg = NotificationsConfig(urls=(UrlSpec("tgram://${TG_TOKEN}/${TG_CHAT}", None), UrlSpec("${MISSING}", None),
                                    UrlSpec("nosuch://${SECRETVAL}@host", Level.WARNING)))
    env = {"TG_TOKEN": "123456789:abcdefghijklmnop", "TG_CHAT": "-100123", "SECRETVAL": "s3cr3t-value"}
    chans, problems = channels(cfg, env)
    assert [c.name for c in chans] == ["urls[0] (tgram)"]
    assert chans[0].url == "tgram://123456789:abcdefghijklmnop/-100123"
    assert set(chans[0].secrets) == {"123456789:abcdefghijklmnop", "-100123"}
    assert problems[0].startswith("notifications.urls[1]: MISSING is not set")
    assert problems[1].startswith("notifications.urls[2]: not an Apprise URL") and "s3cr3t" not in problems[1]


def test_the_daemon_refuses_to_start_naming_a_missing_variable(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("NOTIFY_NOT_SET_ANYWHERE", raising=False)
    raw = yaml.safe_load(open(driver.DEFAULT_CONFIG_PATH))
    raw["notifications"] = {"urls": ["${NOTIFY_NOT_SET_ANYWHERE}"]}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert load_config(path).notifications.urls[0].url == "${NOTIFY_NOT_SET_ANYWHERE}"
    assert driver.main(["--config", str(path), "--date", "2026-11-20"]) == driver.EXIT_CONFIG
    assert "NOTIFY_NOT_SET_ANYWHERE is not set" in capsys.readouterr().err
    raw["notifications"] = {"urls": "json://x"}
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError):
        load_config(path)


def test_day_closed_from_the_report_summary():
    ev = DayClosed.from_summary({"day": "2026-11-20", "trades": 25, "wins": 4, "losses": 21, "net_pnl": -19964.72,
                                 "costs": 8893.27, "starting_capital": 1000000.0, "ending_capital": 980035.28,
                                 "return_pct": -1.996472, "max_drawdown": 28073.97, "open_positions_left": 0})
    assert ev.title() == "Day 2026-11-20: net -19,964.72"
    assert ev.text().startswith("25 exits (4 won, 21 lost): net -19,964.72 after costs 8,893.27; capital "
                                "1,000,000.00 -> 980,035.28 (-2.00%)")


def test_the_day_summary_comes_after_the_storms_it_ends(receiver):
    n = make(NotificationsConfig(storm_limit=3, storm_window_s=600), (receiver.url(), Level.INFO))
    day = DayClosed("2026-11-20", 1, 1, 0, Decimal(5), Decimal(1), Decimal(100), Decimal(105), 5.0, Decimal(0), 0)
    try:
        for i in range(8):
            n.emit(rejected(i))
        n.emit(day)
        receiver.wait_for(lambda: len(receiver.messages()) == 5)
    finally:
        n.close()
    assert [m["title"] for m in receiver.messages()][3:] == ["5 more order rejections", "Day 2026-11-20: net +5.00"]
