"""The live view: the daemon's Manager serves positions, P&L, trading state and process health on loopback to
a reader that knows its authkey (a 0600 file), and `status` shows it while the daemon runs, the database after."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import secrets
import signal
import stat
import subprocess
import sys
import time
from decimal import Decimal
from types import SimpleNamespace

import pytest

from core.enums import PositionSide
from ops.status import apply_live_view, render_status
from pipeline.live_view import LiveViewError, read_live_view, start_manager, trading_view
from pipeline.shared_state import SharedState
from risk_manager import OpenTrade
from tests.daemon_harness import DAY, ROOT, daemon_env, short_day_config, start_daemon
from tests.paper_fixtures import Broker


@pytest.fixture()
def served(tmp_path):
    manager, where = start_manager(mp.get_context("spawn"), f"sqlite:///{tmp_path / 'd.sqlite'}")
    yield manager, where
    manager.shutdown()


def test_the_manager_serves_the_shared_state_on_loopback_to_the_key_holder_only(served, tmp_path):
    manager, where = served
    host, _port = where["address"]
    assert host == "127.0.0.1"
    key_file = tmp_path / f"live_view-{os.getpid()}.key"
    assert where["key_file"] == str(key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    shared = SharedState(manager, manager.live_view())
    shared.set(signals=7, pnl={"realized": Decimal("12.50")})
    assert "signals" not in read_live_view(where)  # written at flush, in one round trip
    shared.flush()
    view = read_live_view(where)
    assert view["signals"] == 7 and view["pnl"] == {"realized": Decimal("12.50")}
    assert view["active_trades"] == 0  # the seed's keys, in the same dict
    wrong = tmp_path / "wrong.key"
    wrong.write_text(os.urandom(32).hex())
    with pytest.raises(LiveViewError):
        read_live_view(dict(where, key_file=str(wrong)))
    with pytest.raises(LiveViewError, match="key"):
        read_live_view(dict(where, key_file=str(tmp_path / "missing.key")))
    with pytest.raises(LiveViewError, match="not loopback"):
        read_live_view(dict(where, address=["10.1.2.3", where["address"][1]]))


def test_trading_view_and_status_show_the_books_labelled_live():
    t = OpenTrade(trade_id=4, symbol="SBIN", strategy="orb", side=PositionSide.SHORT, entry_time=1_763_610_300,
                  entry_price=Decimal("800"), quantity=10, remaining=6, allocated=Decimal("960"),
                  margin_multiplier=Decimal(5))
    rm = SimpleNamespace(active_trades={4: t}, price_tracker={"SBIN": Decimal("790.5")}, capital=Decimal("100250"),
                         start_capital=Decimal("100000"), state=SimpleNamespace(value="ACTIVE"), state_reason="")
    view = trading_view(rm, 1_763_611_000.0, 3)
    assert view["pnl"]["realized"] == Decimal(250) and view["pnl"]["unrealized"] == Decimal("57.0")
    assert view["positions"][0]["quantity"] == 6 and view["positions"][0]["side"] == "short"
    st = {"day": DAY, "trading_state": "unknown", "trading_state_reason": None, "trading_state_since": None,
          "daemon": {"running": True, "summary": "running (pid 1, last heartbeat 1s ago)"}, "report_path": None,
          "database": "sqlite:///x", "capital": Decimal(0), "starting_capital": Decimal(0),
          "capital_source": "config", "realized_pnl": Decimal(0), "closed_trades": 0, "wins": 0, "losses": 0,
          "unrealized_pnl": Decimal(0), "unpriced_positions": 0, "costs": Decimal(0), "gross_pnl": Decimal(0),
          "charges": {}, "open_positions": [], "trades": [], "orders_by_status": {}, "orders_total": 0,
          "order_failures": {}, "disabled_strategies": [], "ticks": None, "equity": Decimal(0), "return_pct": 0.0,
          "caps": {k: {"limit": None, "current": 0.0, "headroom": None, "breached": False}
                   for k in ("global_max_loss_pct", "global_max_profit_pct", "daily_loss_limit")}
          | {"max_drawdown_pct": {"limit": None, "current": 0.0, "headroom": None, "breached": False},
             "max_active_trades": {"limit": 5, "current": 0, "headroom": 5, "breached": False}}}
    apply_live_view(st, dict(view, health={"workers": {"0": {"alive": True, "restarts": 1}},
                                           "feed": {"alive": True, "restarts": 0, "dispatched": 1234}}))
    text = render_status(st)
    assert st["source"] == "live" and st["equity"] == Decimal("100307.0")
    assert "Source    live: positions, P&L and state from the running daemon's shared state" in text
    assert "Processes workers 1/1 alive (1 restarts), feed alive (0 restarts, 1,234 ticks)" in text
    assert "P&L       realized +250.00" in text and "unrealized +57.00" in text
    assert "Day 2026-11-20   trading ACTIVE" in text
    row = next(line for line in text.splitlines() if line.strip().startswith("SBIN"))
    assert row.split()[:3] == ["SBIN", "short", "6"]


def _status(cfg, url: str) -> dict:
    p = subprocess.run([sys.executable, str(ROOT / "driver.py"), "--config", str(cfg), "status", "--json"],
                       capture_output=True, text=True, env=daemon_env(url, {}), cwd=ROOT, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_status_reads_the_live_view_while_a_paced_replay_runs_and_the_database_after(tmp_path):
    cfg = short_day_config(tmp_path)
    url = f"sqlite:///{tmp_path / 'd.sqlite'}"
    out = tmp_path / "out.txt"
    b = Broker(tmp_path / "broker.sqlite", secrets.token_hex(16), log_file=tmp_path / "broker.log").start()
    proc = start_daemon(cfg, url, {"HOST_SERVER": b.url, "APP_KEY": b.key}, ["--speed", "60"], output=out)
    try:
        deadline = time.monotonic() + 150
        seen = None
        while time.monotonic() < deadline:
            assert proc.poll() is None, out.read_text()[-3000:]
            if (tmp_path / "d.sqlite").exists():
                st = _status(cfg, url)
                if st.get("source") == "live" and st["open_positions"]:
                    seen = st
                    break
            time.sleep(0.5)
        assert seen is not None, "no live view with an open position while the replay ran"
        human = subprocess.run([sys.executable, str(ROOT / "driver.py"), "--config", str(cfg), "status"],
                               capture_output=True, text=True, env=daemon_env(url, {}), cwd=ROOT, timeout=60).stdout
        assert "Source    live: positions, P&L and state from the running daemon's shared state" in human, human
        other_day = subprocess.run([sys.executable, str(ROOT / "driver.py"), "--config", str(cfg), "status", "--json",
                                    "--date", "2026-11-19"], capture_output=True, text=True, env=daemon_env(url, {}),
                                   cwd=ROOT, timeout=60)
        assert json.loads(other_day.stdout)["source"] == "database"  # another day's status is history
        assert seen["daemon"]["running"] is True and seen["live"]["health"]["feed"]["dispatched"] > 0
        assert all(w["alive"] for w in seen["live"]["health"]["workers"].values())
        assert seen["capital_source"] == "live view" and seen["equity"] is not None
        key_file = seen["daemon"]["live"]["key_file"]
        assert key_file.startswith(str(tmp_path)) and os.path.exists(key_file)
        log_text = "".join(p.read_text() for p in (tmp_path / "logs").glob("*.log")) + out.read_text()
        assert open(key_file).read().strip() not in log_text  # the authkey is never logged
        proc.send_signal(signal.SIGINT)  # a graceful stop mid-day: the database view from then on
        assert proc.wait(timeout=90) == 0, out.read_text()[-3000:]
        after = _status(cfg, url)
        assert after["source"] == "database" and after["live"] is None and after["daemon"]["running"] is False
        assert not os.path.exists(key_file)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        b.stop()
