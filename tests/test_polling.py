"""PollSet: the driver's and the workers' loops wait on a poll set kept across turns; it must answer as
multiprocessing.connection.wait does, also after a pipe is replaced by one that reuses its descriptor."""
from __future__ import annotations

import multiprocessing as mp
import os

from pipeline.polling import PollSet


def test_ready_names_what_can_be_read_as_given():
    ctx = mp.get_context("spawn")
    r1, w1 = ctx.Pipe(duplex=False)
    r2, w2 = ctx.Pipe(duplex=False)
    fd_r, fd_w = os.pipe()
    ps = PollSet()
    try:
        assert ps.ready([r1, r2, fd_r], 0) == []
        w2.send_bytes(b"x")
        os.write(fd_w, b"\0")
        assert set(map(id, ps.ready([r1, r2, fd_r], 0.5))) == {id(r2), id(fd_r)}
        assert r2.recv_bytes() == b"x"
        w1.close()  # a writer that ended: readable (EOF), as wait() says
        assert [o for o in ps.ready([r1, r2, fd_r], 0.5) if o is not fd_r] == [r1]
    finally:
        for c in (r1, r2, w2):
            c.close()
        os.close(fd_r)
        os.close(fd_w)


def test_a_new_pipe_on_a_reused_descriptor_is_the_one_returned():
    ctx = mp.get_context("spawn")
    ps = PollSet()
    old_r, old_w = ctx.Pipe(duplex=False)
    assert ps.ready([old_r], 0) == []
    fd = old_r.fileno()
    old_r.close()
    old_w.close()
    new_r, new_w = ctx.Pipe(duplex=False)
    try:
        new_w.send_bytes(b"y")
        got = ps.ready([new_r], 0.5)
        assert len(got) == 1 and got[0] is new_r, (fd, new_r.fileno())
    finally:
        new_r.close()
        new_w.close()
