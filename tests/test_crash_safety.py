"""A kill at any moment loses nothing and duplicates nothing: the real daemon on a replayed day against a
real paper broker, killed with SIGKILL again and again (at random moments, and exactly between "order
recorded" and "order sent" and between "sent" and "acknowledged"), restarted each time until the day is
done; then the broker's books and the database must agree."""
from __future__ import annotations

import os
import random
import secrets
import signal
import subprocess
import sys

from tests.daemon_harness import DAY, ROOT, rows, short_day_config
from tests.paper_fixtures import Broker
from tests.test_daemon_replay import check_books

KILLS = int(os.environ.get("CRASH_KILLS", "20"))


def start(cfg, db_url, b, crash_at: str | None = None, speed: str = "max") -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "HOST_SERVER", "APP_KEY", "LIVE_DATA",
                                                            "DAEMON_CRASH_AT")}
    env.update(DATABASE_URL=db_url, HOST_SERVER=b.url, APP_KEY=b.key, LIVE_DATA="false")
    if crash_at:
        env["DAEMON_CRASH_AT"] = crash_at
    return subprocess.Popen([sys.executable, str(ROOT / "driver.py"), "--config", str(cfg), "--date", DAY,
                             "--speed", speed],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_sigkill_at_random_moments_loses_and_duplicates_nothing(tmp_path):
    rng = random.Random(int(os.environ.get("CRASH_SEED", "20261121")))
    b = Broker(tmp_path / "broker.sqlite", secrets.token_hex(16), args=["--order-rate", "10"],
               log_file=tmp_path / "broker.log").start()
    cfg = short_day_config(tmp_path)
    db_url = f"sqlite:///{tmp_path / 'd.sqlite'}"
    kills, finished, outputs = 0, False, []
    points = ["order_committed", "order_acknowledged", "fill_seen"]
    try:
        # the 90-minute day at 600x takes ~9 s: random kills land anywhere in start-up, replay and close
        for i in range(KILLS):
            crash_at = f"{points[(i // 3) % len(points)]}:{rng.randint(1, 3)}" if i % 3 == 1 else None
            p = start(cfg, db_url, b, crash_at, speed="600")
            if crash_at is None:
                try:
                    p.wait(timeout=rng.uniform(1.0, 9.0))
                except subprocess.TimeoutExpired:
                    p.send_signal(signal.SIGKILL)
            try:
                out, _ = p.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGINT)
                out, _ = p.communicate(timeout=30)
                raise AssertionError(f"daemon hung (run {i + 1}, crash_at={crash_at}):\n{out[-6000:]}")
            assert p.returncode in (0, -signal.SIGKILL), out[-3000:]
            # a run killed while spawning leaves its half-started children's complaints; a finished one none
            assert p.returncode != 0 or "Traceback" not in out, out[-3000:]
            kills += p.returncode == -signal.SIGKILL
        p = start(cfg, db_url, b)  # and finally one run that is left alone to finish the day
        out, _ = p.communicate(timeout=240)
        outputs.append(out)
        finished = p.returncode == 0
        assert finished, "the day never finished"
        assert kills >= KILLS * 2 // 3, f"only {kills} of {KILLS} runs were killed"
        last = outputs[-1]
        assert "Traceback" not in last, last[-3000:]
        check_books(db_url, b)
        # no signal was acted on twice: at most one entry order per signal reached the broker
        dup = rows(db_url, "SELECT signal_id, COUNT(*) FROM orders WHERE broker_order_id IS NOT NULL AND "
                           "signal_id IS NOT NULL GROUP BY signal_id HAVING COUNT(*) > 1")
        assert dup == [], dup
        assert rows(db_url, "SELECT COUNT(*) FROM active_trades")[0][0] == 0
        print(f"survived {kills} kills")
    finally:
        b.stop()
