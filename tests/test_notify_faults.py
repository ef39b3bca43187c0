"""The rest of the trader's messages from the whole daemon, to a local JSON webhook through Apprise, on a replayed
short day with real faults: the paper broker rejects some orders, a tight global loss cap halts the day and
flattens it, a symbol cap forces an exit, a worker is killed with SIGKILL and restarted; then a restart of the
same day finds a position at the broker that the database does not know (reconciliation mismatch)."""
from __future__ import annotations

import os
import re
import secrets
import signal

import pytest

from tests.conftest import wait_for
from tests.daemon_harness import rows, short_day_config, start_daemon
from tests.notify_receiver import Receiver
from tests.paper_fixtures import ORDER, Broker, T, q


@pytest.fixture
def paper(tmp_path):
    b = Broker(tmp_path / "broker.sqlite", secrets.token_hex(16), args=["--order-rate", "10", "--reject-rate", "0.2",
                                                                      "--seed", "3"],
               log_file=tmp_path / "broker.log").start()
    yield b
    b.stop()


def run_to_end(proc, out, timeout: float = 180) -> str:
    try:
        assert proc.wait(timeout=timeout) == 0, out.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return out.read_text()


def test_faults_of_a_day_reach_the_phone(tmp_path, paper):
    db_url = f"sqlite:///{tmp_path / 'day.sqlite'}"
    env = {"HOST_SERVER": paper.url, "APP_KEY": paper.key}
    with Receiver() as receiver:
        cfg = short_day_config(tmp_path, risk={"global_max_loss_pct": -0.01, "risk_per_trade": 0.02},
                               notifications={"urls": [receiver.url()], "storm_limit": 1000})
        out = tmp_path / "run1.out"
        proc = start_daemon(cfg, db_url, env, args=["--speed", "300"], output=out)
        m = wait_for(lambda: re.search(r"workers ready \(pids ([\d ]+)\)", out.read_text()), timeout=60,
                     what="workers ready")
        victim = int(m.group(1).split()[3])
        wait_for(lambda: "daemon running" in out.read_text(), timeout=60, what="the replay to start")
        os.kill(victim, signal.SIGKILL)
        text = run_to_end(proc, out)
        got = receiver.messages()
    assert "Traceback" not in text
    titles = [m["title"] for m in got]
    by_title = {m["title"]: m for m in got}
    assert titles[:2] == ["Daemon started", "Daemon ready"] and titles[-1].startswith("Day 2026-11-20: net ")
    # the killed worker, as a warning
    assert by_title["worker 3 restarted"]["type"] == "warning"
    assert "died and was restarted (1 restart(s) today)" in by_title["worker 3 restarted"]["message"]
    # the global loss cap: a halt (critical), then the flattening it forced
    halted = by_title["Trading halted"]
    assert halted["type"] == "failure" and "global loss cap breached" in halted["message"]
    (forced,) = [m for m in got if m["title"].startswith("Forced exit of ")]
    assert titles.index("Trading halted") < titles.index(forced["title"]) and forced["type"] == "failure"
    held = {sym for (sym,) in rows(db_url, "SELECT symbol FROM orders WHERE purpose = 'exit'")}
    assert forced["message"].startswith("risk: global loss cap breached") and any(s in forced["message"] for s in held)
    # every order the broker rejected, once each
    rejected = rows(db_url, "SELECT side, quantity, symbol FROM orders WHERE status = 'REJECTED' ORDER BY id")
    assert rejected, "the broker's --reject-rate rejected nothing: this test would prove nothing"
    assert [m["title"] for m in got if m["title"].startswith("Order rejected: ")] == \
        [f"Order rejected: {side} {qty} {sym}" for side, qty, sym in rejected]
    # a symbol cap's forced exit: named with the symbol whose trade closed on that cap
    capped = {sym for (sym,) in rows(db_url, "SELECT symbol FROM trade_log WHERE exit_reason LIKE 'symbol_%_cap'")}
    assert capped and {t.split(":")[0] for t in titles if t.endswith(" cap crossed")} == capped
    assert all(by_title[t]["type"] == "warning" for t in titles if t.endswith(" cap crossed"))

    # a restart of the same day finds a position at the broker that the database does not know: bought by hand
    paper.admin().clear_faults()
    paper.admin().push_market([q("SBIN", T(10, 44), 600.0, 599.9, 600.1)], clock=T(10, 44))
    assert paper.post("placeorder", ORDER).status_code == 200
    with Receiver() as receiver:
        cfg = short_day_config(tmp_path, notifications={"urls": [receiver.url()]})
        out = tmp_path / "run2.out"
        text = run_to_end(start_daemon(cfg, db_url, env, args=["--speed", "300"], output=out), out)
        got = receiver.messages()
    assert "Traceback" not in text
    titles = [m["title"] for m in got]
    assert titles[:3] == ["Daemon started", "Reconciliation found 1 issue(s)", "Daemon ready"], titles
    assert got[1]["type"] == "failure"
    assert got[1]["message"] == "SBIN: broker holds +10, database +0: trading halted until resolved by hand"
    assert got[2]["message"].endswith("trading state HALTED.")
