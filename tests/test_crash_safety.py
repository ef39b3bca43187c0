"""A kill at any moment loses nothing and duplicates nothing: the real daemon on a replayed day against a
real paper broker, killed with SIGKILL again and again (at random moments, and exactly between "order
recorded" and "order sent" and between "sent" and "acknowledged"), restarted each time until the day is
done; then the broker's books and the database must agree. The loop is tests/crash_harness.py, which
bench/soak.py runs for longer."""
from __future__ import annotations

import os
import secrets
import signal

from tests.crash_harness import SPEED, assert_whole_and_flat, crash_loop
from tests.daemon_harness import rows, short_day_config, start_daemon
from tests.paper_fixtures import Broker

KILLS = int(os.environ.get("CRASH_KILLS", "20"))


def test_sigkill_at_random_moments_loses_and_duplicates_nothing(tmp_path):
    res = crash_loop(tmp_path, kills=KILLS, seed=int(os.environ.get("CRASH_SEED", "20261121")), per_round=KILLS,
                     keep_broker=True)
    b = res.last_round.get("broker")
    try:
        assert res.errors == [], "\n".join(res.errors)
        assert res.kills == KILLS and res.kills_survived == KILLS and res.rounds == 1, res.summary()
        assert_whole_and_flat(res.last_round["db_url"], b, inv=res.last_round["invariants"])
        print(f"survived {res.kills} kills: {res.summary()}")
    finally:
        if b is not None:
            b.stop()


def test_killed_before_the_days_first_acknowledgement_restarts_and_adopts_the_order(tmp_path):
    """The day's first order reached the broker but the daemon died before recording its id: the restart must
    not take the broker's open order or position for someone else's (it is ours: reconciliation adopts it)."""
    b = Broker(tmp_path / "broker.sqlite", secrets.token_hex(16), args=["--order-rate", "10"],
               log_file=tmp_path / "broker.log").start()
    try:
        cfg = short_day_config(tmp_path)
        db_url = f"sqlite:///{tmp_path / 'd.sqlite'}"
        env = {"HOST_SERVER": b.url, "APP_KEY": b.key}
        p = start_daemon(cfg, db_url, {**env, "DAEMON_CRASH_AT": "order_acknowledged:1"}, args=["--speed", SPEED])
        out, _ = p.communicate(timeout=120)
        assert p.returncode == -signal.SIGKILL, out[-3000:]
        assert rows(db_url, "SELECT COUNT(*) FROM orders WHERE broker_order_id IS NOT NULL")[0][0] == 0
        p = start_daemon(cfg, db_url, env, args=["--speed", SPEED])
        out, _ = p.communicate(timeout=180)
        assert p.returncode == 0 and "Traceback" not in out, out[-3000:]
        assert_whole_and_flat(db_url, b)
    finally:
        b.stop()
