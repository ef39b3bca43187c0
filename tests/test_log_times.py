"""Log lines carry IST with its offset whatever the host's zone (issue 13, item 12): the same clock as `status`
and the reports, and a reader can still tell the zone."""
from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from datetime import datetime

from core.logs import ISTFormatter

STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})\+05:30 ")


def record_at(epoch: float) -> logging.LogRecord:
    r = logging.LogRecord("t", logging.INFO, __file__, 1, "hello", None, None)
    r.created, r.msecs = epoch, round((epoch - int(epoch)) * 1000)
    return r


def test_formatter_writes_ist_with_the_offset():
    fmt = ISTFormatter("%(asctime)s %(message)s")
    # 2026-12-02 11:40:03.123 UTC is 17:10:03.123 IST
    epoch = datetime.fromisoformat("2026-12-02T11:40:03.123+00:00").timestamp()
    assert fmt.format(record_at(epoch)) == "2026-12-02 17:10:03.123+05:30 hello"
    # across midnight: 20:00 UTC is 01:30 IST the next day
    epoch = datetime.fromisoformat("2026-12-02T20:00:00.999+00:00").timestamp()
    assert fmt.format(record_at(epoch)) == "2026-12-03 01:30:00.999+05:30 hello"


def test_the_hosts_zone_does_not_matter(tmp_path):
    """A process whose TZ says New York still logs in IST: the set-up every process (workers, feed, paper
    broker) calls, with its file handler."""
    code = ("import logging, sys; from pathlib import Path; from core.logs import setup_logging; "
            "setup_logging('INFO', Path(sys.argv[1])); logging.getLogger('x').info('tz check')")
    env = dict(os.environ, TZ="America/New_York")
    before = time.time()
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True,
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), timeout=60)
    assert p.returncode == 0, p.stderr
    for text in (p.stderr, (tmp_path / "daemon.log").read_text()):
        m = STAMP.match(text)
        assert m, text
        logged = datetime.fromisoformat(m.group(1) + "+05:30").timestamp()
        assert before - 1 <= logged <= time.time() + 1, (text, before)
