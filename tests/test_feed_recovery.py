"""The replay recovers from a feed disconnect and a stall: the real daemon on the short replayed day against
a real paper broker, with its simulated socket dropped mid-day (DAEMON_FEED_DROP_AT, core/faults.py). The
socket does not resubscribe by itself (as the Fyers SDK), so the ticks after the reconnect reach the daemon
only if ReplayFeed subscribes again in on_connect."""
from __future__ import annotations

import re
import secrets
from datetime import date
from datetime import time as dtime

import pytest

from core.clock import fmt_ist, ist_epoch
from core.config import load_config
from core.errors import StartupError
from core.faults import feed_drops
from feeds.synthetic import generate_day
from tests.crash_harness import assert_whole_and_flat
from tests.daemon_harness import DAY, rows, short_day_config, start_daemon
from tests.paper_fixtures import Broker

DROP_AT, DOWN_S = dtime(9, 45), 900   # 15 minutes of feed time: 3 s of wall time at 300x


def test_feed_drop_spec_is_parsed_or_refused_clearly():
    day = date.fromisoformat(DAY)
    assert feed_drops(day, "") == []
    assert feed_drops(day, "09:45:00/120, 10:05/30.5") == [(ist_epoch(day, dtime(9, 45)), 120.0),
                                                             (ist_epoch(day, dtime(10, 5)), 30.5)]
    for bad in ("09:45", "9h45/10", "09:45/0", "09:45/x"):
        with pytest.raises(StartupError, match="DAEMON_FEED_DROP_AT: .* is not allowed -- use HH:MM:SS/SECONDS"):
            feed_drops(day, bad)


def test_replay_reconnects_resubscribes_and_reports_the_stall(tmp_path):
    b = Broker(tmp_path / "broker.sqlite", secrets.token_hex(16), args=["--order-rate", "10"],
               log_file=tmp_path / "broker.log").start()
    try:
        cfg_path = short_day_config(tmp_path, monitoring={"feed_silence_seconds": 1})
        url = f"sqlite:///{tmp_path / 'd.sqlite'}"
        out = tmp_path / "daemon.out"
        p = start_daemon(cfg_path, url, {"HOST_SERVER": b.url, "APP_KEY": b.key,
                                         "DAEMON_FEED_DROP_AT": f"{DROP_AT:%H:%M:%S}/{DOWN_S}"},
                         args=["--speed", "300"], output=out)
        rc = p.wait(timeout=180)
        log = out.read_text()
        assert rc == 0, log[-3000:]
        assert "Traceback" not in log and " ERROR " not in log, log[-3000:]
        # what the socket does with the day's ticks: it drops at the first tick at or after DROP_AT, misses every
        # tick until the first one DOWN_S later, reconnects there and, once resubscribed, sends a snapshot of each
        # symbol seen so far; a clean run dispatches every tick of the day
        cfg = load_config(cfg_path)
        tickers = [s.fyers for s in cfg.symbols]
        at = ist_epoch(date.fromisoformat(DAY), DROP_AT)
        total = missed = 0
        dropped_at = back_at = None
        seen: set[str] = set()
        for t in generate_day(tickers, date.fromisoformat(DAY), cfg.replay.seed, cfg.session):
            ts = t["exch_feed_time"]
            total += 1
            if dropped_at is None and ts >= at:
                dropped_at = ts
            if back_at is None and dropped_at is not None and ts >= dropped_at + DOWN_S:
                back_at = ts
            if back_at is None:
                missed += dropped_at is not None
                seen.add(t["symbol"])  # the socket keeps each symbol's last state, delivered or not
        assert missed > 1000 and len(seen) == len(tickers)
        # the drop, the reconnect and the resubscription are reported, in that order, once each
        lines = log.splitlines()
        where = [next((i for i, ln in enumerate(lines) if re.search(pattern, ln)), None) for pattern in (
            rf"WARNING .* simulated socket: connection dropped at feed time {fmt_ist(dropped_at)}",
            rf"INFO .* simulated socket: reconnected at feed time {fmt_ist(back_at)}",
            r"INFO .* replay feed reconnected after a drop: resubscribing 8 symbols")]
        assert None not in where and where == sorted(where), where
        assert sum("connection dropped" in ln for ln in lines) == 1
        # the seconds without ticks in market hours are reported as a stall
        assert any(re.search(r"WARNING .* driver: feed silent: no tick for 1s during market hours", ln) for ln in lines)
        # every tick but those missed while down reached the workers: the subscription came back
        dispatched = int(re.search(r"shutdown complete in [\d.]+s: (\d+) ticks dispatched", log).group(1))
        assert dispatched == total - missed + len(seen), (dispatched, total, missed)
        # the strategies traded on the ticks after the reconnect, and the books are whole and flat
        assert rows(url, "SELECT COUNT(*) FROM stock_signals WHERE time >= :t", t=back_at)[0][0] > 0
        assert_whole_and_flat(url, b)
    finally:
        b.stop()
