"""A daemon killed mid-day with positions open, and restarted: its strategies take up the positions the ledger
holds (Strategy.resume_position) and close them with their own exits, at the same ticks as an uninterrupted day,
not only by the TradeManager's caps and square-off. Real daemon processes and a real paper broker."""
from __future__ import annotations

import secrets
from pathlib import Path

from tests.daemon_harness import SYMBOLS, rows, run_daemon, short_day_config
from tests.paper_fixtures import Broker
from tests.test_daemon_replay import check_books, env_for, session_epoch

KILL = "09:45"
# warm-up on; the per-symbol caps off, so that the strategies' own exits decide (with the shipped -2% cap a cap
# closes most trades first)
OVERRIDES = {"market_data": {"warmup_from_history": True},
             "risk": {"symbol_max_loss_pct": None, "symbol_max_profit_pct": None}}
SIGNALS = ("SELECT symbol, time, type, current_position, note, outcome FROM stock_signals WHERE time >= :t "
           "ORDER BY time, symbol, type")
TRADES = ("SELECT symbol, side, quantity, entry_time, entry_price, exit_time, exit_price, exit_reason FROM trade_log "
          "ORDER BY exit_time, symbol, trade_id, id")


def day(tmp: Path, name: str, runs: list[tuple[dict[str, str], list[str], int]]) -> str:
    """Replay the short day on a fresh database and paper broker, once per `runs` entry (extra env, args,
    expected exit code); the database URL."""
    d = tmp / name
    d.mkdir()
    b = Broker(d / "broker.sqlite", secrets.token_hex(16), args=["--order-rate", "10"]).start()
    try:
        cfg = short_day_config(d, **OVERRIDES)
        db_url = f"sqlite:///{d / 'd.sqlite'}"
        for env, args, code in runs:
            run = run_daemon(cfg, db_url, {**env_for(b), **env}, args)
            assert run.returncode == code, run.output[-3000:]
            if args:  # the restart
                assert "strategies resume" in run.output, run.output[-3000:]
        check_books(db_url, b)
        return db_url
    finally:
        b.stop()


def test_a_restarted_daemon_s_strategies_exit_their_positions_as_an_uninterrupted_day(tmp_path):
    whole = day(tmp_path, "whole", [({}, [], 0)])
    killed = day(tmp_path, "killed", [({"DAEMON_KILL_AT": f"{KILL}:00"}, [], -9), ({}, ["--start", KILL], 0)])
    kill = session_epoch(KILL)
    across = "SELECT symbol, side, quantity, entry_time, entry_price, exit_time, exit_price, exit_reason " \
             "FROM trade_log WHERE entry_time < :k AND exit_time > :k ORDER BY exit_time, symbol"
    held = [t for t in rows(whole, across, k=kill) if t[-1] == "signal"]
    assert len(held) >= 2, "the day has no strategy-closed position open across the kill: the test proves nothing"
    # open when the daemon was killed (the restart found them in the books), and closed by their strategies' own
    # exits (a reversal, a stop, a take-profit) at the same ticks and prices as without the kill, not by a cap,
    # the reconciliation or the square-off
    after = rows(killed, across, k=kill)
    assert all(h in after for h in held), (held, after)
    def exits(db_url: str) -> list[tuple]:  # the note's first word: the ledger keeps a price to 4 places, and
        return [(*s[:4], s[5], s[4].split(" ")[0]) for s in rows(db_url, SIGNALS, t=kill)  # the breakout's own
                if s[2] != "entry" and s[0] in {h[0] for h in held}]  # take-profit note prints it as computed
    assert {"reversal:", "take-profit"} <= {s[-1] for s in exits(whole)}
    assert exits(killed) == exits(whole)
    # the rest of the day trades alike, but for an opening-range breakout that has not seen its range since the
    # open (a late start): it takes no new entry
    orb = {s for s in SYMBOLS if isinstance(s, str)}  # the config's default strategy, orb
    later = ("SELECT symbol, side, entry_time, exit_time, exit_price, exit_reason FROM trade_log "
             "WHERE entry_time >= :k ORDER BY exit_time, symbol, entry_time")
    assert rows(killed, later, k=kill) == [t for t in rows(whole, later, k=kill) if t[0] not in orb]
