"""One log sink: child processes log through their own pipe to the driver's LogSink, which alone writes the
files; lines stay whole under concurrent writers, go to each child's file in IST, secrets masked, and a child
killed mid-run does not stop the others' logging."""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import re
import signal

from core.logs import LogSink, setup_logging
from tests.conftest import wait_for

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\+05:30 INFO    (child-\d) t: (\d+) (x+) end$")


def _child(n: int, conn, lines: int, wait_forever: bool) -> None:
    setup_logging("INFO", None, ["s3cret-value"], filename=f"child-{n}.log", sink=conn)
    log = logging.getLogger("t")
    for i in range(lines):
        log.info("%d %s end", i, "x" * (200 + 37 * n))  # long lines: a torn write would show
    log.info("done with s3cret-value")
    if wait_forever:
        signal.pause()


def test_children_log_through_the_sink_whole_lines_in_their_own_files(tmp_path):
    ctx = mp.get_context("spawn")
    sink = LogSink(tmp_path)
    procs = []
    try:
        for n in range(3):
            conn = sink.channel(f"child-{n}.log")
            p = ctx.Process(target=_child, name=f"child-{n}", args=(n, conn, 2000, n == 2))
            p.start()
            conn.close()
            procs.append(p)
        for p in procs[:2]:
            p.join(60)
            assert p.exitcode == 0
        wait_for(lambda: "done with" in (tmp_path / "child-2.log").read_text() if (tmp_path / "child-2.log").exists()
                 else False, timeout=30, what="the third child's last line")
        os.kill(procs[2].pid, signal.SIGKILL)  # killed: its pipe ends, the sink goes on
        procs[2].join(10)
    finally:
        sink.close()
        for p in procs:
            if p.is_alive():
                p.kill()
    for n in range(3):
        text = (tmp_path / f"child-{n}.log").read_text()
        assert "s3cret-value" not in text and "done with ***" in text
        seen = []
        for line in text.splitlines()[:-1]:
            m = LINE.match(line)
            assert m and m.group(1) == f"child-{n}" and len(m.group(3)) == 200 + 37 * n, line[:120]
            seen.append(int(m.group(2)))
        assert seen == list(range(2000))  # every record, in order, none torn
