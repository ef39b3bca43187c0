"""A worker killed with SIGKILL mid-day is reported and restarted with its symbols; the day still ends with
the books right, and ticks are delivered again or counted as dropped."""
from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys

from tests.conftest import wait_for
from tests.daemon_harness import DAY, ROOT, short_day_config
from tests.paper_fixtures import Broker
from tests.test_daemon_replay import check_books


def test_killed_worker_is_restarted_and_the_day_completes(tmp_path):
    b = Broker(tmp_path / "broker.sqlite", secrets.token_hex(16), args=["--order-rate", "10"]).start()
    log = tmp_path / "out.log"
    db_url = f"sqlite:///{tmp_path / 'd.sqlite'}"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "HOST_SERVER", "APP_KEY", "LIVE_DATA")}
    env.update(DATABASE_URL=db_url, HOST_SERVER=b.url, APP_KEY=b.key, LIVE_DATA="false")
    try:
        with open(log, "w") as out:
            p = subprocess.Popen([sys.executable, str(ROOT / "driver.py"), "--config", str(short_day_config(tmp_path)),
                                  "--date", DAY, "--speed", "300"], cwd=ROOT, env=env, stdout=out,
                                 stderr=subprocess.STDOUT)
        m = wait_for(lambda: re.search(r"workers ready \(pids ([\d ]+)\)", log.read_text()), timeout=60,
                     what="workers ready")
        victim = int(m.group(1).split()[3])
        wait_for(lambda: "daemon running" in log.read_text(), timeout=60, what="the replay to start")
        os.kill(victim, signal.SIGKILL)  # early in a replay that lasts ~18 s at 300x
        assert p.wait(timeout=180) == 0, log.read_text()[-3000:]
        text = log.read_text()
        assert f"worker 3 (pid {victim}) died" in text and "worker 3 restarted" in text
        assert re.search(r"1 worker restarts", text)
        assert "Traceback" not in text
        check_books(db_url, b)
    finally:
        if p.poll() is None:
            p.kill()
        b.stop()


def test_a_replay_whose_feed_process_dies_stops_with_a_clear_error(tmp_path):
    """A replay cannot go on without its feed (a new one would start the day again): exit 1, say why."""
    log = tmp_path / "out.log"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "HOST_SERVER", "APP_KEY", "LIVE_DATA")}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'd.sqlite'}", HOST_SERVER="http://127.0.0.1:9",
               LIVE_DATA="false")
    cfg = short_day_config(tmp_path, mode="signals_only")
    with open(log, "w") as out:
        p = subprocess.Popen([sys.executable, str(ROOT / "driver.py"), "--config", str(cfg), "--date", DAY,
                              "--speed", "100"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        m = wait_for(lambda: re.search(r"feed process started \(pid (\d+)\)", log.read_text()), timeout=60,
                     what="the feed process")
        os.kill(int(m.group(1)), signal.SIGKILL)
        assert p.wait(timeout=60) == 1
        text = log.read_text()
        assert "the feed process died" in text and "the replay cannot go on" in text
        assert "Traceback" not in text
    finally:
        if p.poll() is None:
            p.kill()
