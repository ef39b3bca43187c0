"""Start-up between the driver and the feed process (issue 12, item 5): the feed may report cycles before it
reports that it started, and a run that fails at start writes no report."""
from __future__ import annotations

from tests.daemon_harness import DAY, rows, run_daemon, short_day_config


def test_cycles_reported_before_started_are_taken_in_order(tmp_path):
    """The feed process holds its "started" report back until its replay has sent cycles (the ordering that
    crashed the driver about once in 50 runs); the run completes with the same signals as an ordinary run."""
    cfg = short_day_config(tmp_path, mode="signals_only")
    plain = run_daemon(cfg, f"sqlite:///{tmp_path / 'plain.sqlite'}", {}, timeout=300)
    assert plain.returncode == 0, plain.output[-3000:]
    late = run_daemon(cfg, f"sqlite:///{tmp_path / 'late.sqlite'}", {"DAEMON_FEED_STARTED_DELAY_S": "1.5"},
                      timeout=300)
    assert late.returncode == 0, late.output[-3000:]
    assert "Traceback" not in late.output
    q = "SELECT signal_id, type, outcome FROM stock_signals ORDER BY signal_id"
    assert rows(late.db_url, q) == rows(plain.db_url, q) != []


def test_a_run_that_fails_at_start_writes_no_report(tmp_path):
    """The feed process refuses to start (a malformed feed-drop setting) after the TradeManager has started:
    the run exits 1 with the reason, and reports/<day>/ is not written."""
    cfg = short_day_config(tmp_path, mode="signals_only")
    run = run_daemon(cfg, f"sqlite:///{tmp_path / 'd.sqlite'}", {"DAEMON_FEED_DROP_AT": "later"}, timeout=300)
    assert run.returncode == 1, run.output[-3000:]
    assert "DAEMON_FEED_DROP_AT: 'later' is not allowed" in run.output and "Traceback" not in run.output
    assert not (tmp_path / "reports" / DAY).exists()
