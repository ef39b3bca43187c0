"""Warm-up from history through the whole daemon (driver.py, workers, a real paper broker): a replayed day with
warm-up trades identically on every run, its MA crossovers decide from the open, and a replay started mid-day
(as a restarted daemon starts) has strategies that continue where an uninterrupted day's were."""
from __future__ import annotations

import re
import secrets

from tests.daemon_harness import rows, run_daemon, short_day_config
from tests.paper_fixtures import Broker
from tests.test_daemon_replay import env_for, session_epoch, trades

CROSS = re.compile(r"fast SMA\(\d+\) [\d.]+ crossed (?:above|below) slow SMA\(\d+\) [\d.]+ on the candle closing at "
                   r"[\d.]+")


WARM = {"warmup_from_history": True}  # as config.yaml ships it; said here, as these tests are about it


def mac_signals(db_url: str, since: int = 0) -> list[tuple]:
    return rows(db_url, "SELECT symbol, time, type, note FROM stock_signals WHERE strategy = 'mac' AND time >= :t "
                        "ORDER BY time, symbol", t=since)


def test_a_replayed_day_with_warm_up_trades_identically_on_every_run(tmp_path):
    results = []
    for i in range(2):
        d = tmp_path / f"run{i}"
        d.mkdir()
        b = Broker(d / "broker.sqlite", secrets.token_hex(16), args=["--order-rate", "10"]).start()
        try:
            run = run_daemon(short_day_config(d, market_data=WARM), f"sqlite:///{d / 'd.sqlite'}", env_for(b))
            assert run.returncode == 0, run.output[-3000:]
            assert "strategies start warm" in run.output and "starts cold" not in run.output
            results.append((trades(run.db_url), mac_signals(run.db_url)))
        finally:
            b.stop()
    assert results[0][0] and results[0] == results[1]
    # cold, a crossover with a 21-candle slow average could not decide before 09:36
    early = [s for s in results[0][1] if s[1] < session_epoch("09:36")]
    assert early, "no MA crossover signal in the first 21 minutes: the strategies did not warm up"


def test_a_replay_started_mid_day_continues_where_the_uninterrupted_day_was(tmp_path):
    """signals_only, so that no position of the first hour changes what the strategies are told."""
    crosses = []
    for name, args in (("whole", []), ("from10", ["--start", "10:00"])):
        d = tmp_path / name
        d.mkdir()
        cfg = short_day_config(d, mode="signals_only", market_data=WARM)
        run = run_daemon(cfg, f"sqlite:///{d / 'd.sqlite'}", {"HOST_SERVER": "http://127.0.0.1:9"}, args)
        assert run.returncode == 0, run.output[-3000:]
        crosses.append({(sym, CROSS.search(note).group(0)) for sym, t, _type, note in
                        mac_signals(run.db_url, session_epoch("10:00")) if CROSS.search(note)})
    whole, resumed = crosses
    # the same crosses after 10:00, with the same averages to the fourth decimal (cold, the resumed day could
    # see none before 10:21, and its averages would start from 10:00's candles)
    assert len(resumed) >= 3 and resumed == whole
