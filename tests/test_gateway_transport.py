"""The gateway's kept-alive transport against small socket servers: what counts as not sent, what as sent
with no answer, and that a connection the server closed while idle is replaced before it is used."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from gateway.transport import KeepAlive, NoAnswer, NotSent
from tests.conftest import free_port

OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{"status":"ok"}'


class _Server:
    """Accepts connections on loopback; for each request, `script(n)` says what to do: 'answer', 'answer+close'
    (answer, then close the idle connection), 'close' (close without answering) or 'hang'."""

    def __init__(self, script):
        self.script = script
        self.requests = 0
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c: socket.socket) -> None:
        buf = b""
        with c:
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = c.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, rest = buf.partition(b"\r\n\r\n")
                n = int(next(ln.split(b":")[1] for ln in head.split(b"\r\n")
                             if ln.lower().startswith(b"content-length")))
                while len(rest) < n:
                    rest += c.recv(65536)
                buf = rest[n:]
                self.requests += 1
                what = self.script(self.requests)
                if what == "hang":
                    self.stop.wait(5)
                    return
                if what == "close":
                    return
                c.sendall(OK)
                if what == "answer+close":
                    return

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def wait_for(cond, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


@pytest.fixture
def server():
    made = []

    def make(script):
        s = _Server(script)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


def test_kept_alive_connection_is_reused(server):
    srv = server(lambda n: "answer")
    t = KeepAlive(f"http://127.0.0.1:{srv.port}", 1.0, 1.0)
    for _ in range(5):
        assert t.post("/api/v1/x", b"{}") == (200, b'{"status":"ok"}')
    assert (srv.requests, srv.connections) == (5, 1)
    t.close()


def test_a_request_leaves_in_one_write_head_and_body_together(server):
    srv = server(lambda n: "answer")
    t = KeepAlive(f"http://127.0.0.1:{srv.port}", 1.0, 1.0)
    assert t.post("/api/v1/x", b'{"a":1}')[0] == 200  # the connection is made
    conn = t._local.conn  # noqa: SLF001 - its writes are what is checked
    sends: list[bytes] = []
    real = conn.send
    conn.send = lambda data: (sends.append(bytes(data)), real(data))[1]
    assert t.post("/api/v1/x", b'{"placed":true}') == (200, b'{"status":"ok"}')
    assert len(sends) == 1
    assert sends[0].startswith(b"POST /api/v1/x HTTP/1.1\r\n") and sends[0].endswith(b'\r\n\r\n{"placed":true}')
    assert b"Content-Length: 15\r\n" in sends[0]
    t.close()


def test_a_connection_closed_while_idle_is_replaced_not_reported(server):
    srv = server(lambda n: "answer+close")
    t = KeepAlive(f"http://127.0.0.1:{srv.port}", 1.0, 1.0)
    assert t.post("/api/v1/x", b"{}")[0] == 200
    wait_for(lambda: t._local.conn is None or t._local.conn.sock is None  # noqa: SLF001 - closed by us
             or _peer_closed(t._local.conn.sock))  # noqa: SLF001
    assert t.post("/api/v1/x", b"{}")[0] == 200  # a new connection, the request sent once
    assert (srv.requests, srv.connections) == (2, 2)
    t.close()


def _peer_closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False


def test_refused_is_not_sent():
    t = KeepAlive(f"http://127.0.0.1:{free_port()}", 1.0, 1.0)
    with pytest.raises(NotSent) as e:
        t.post("/api/v1/x", b"{}")
    assert e.value.kind == "ConnectionError"


def test_closed_without_an_answer_is_no_answer_and_the_next_call_reconnects(server):
    srv = server(lambda n: "close" if n == 1 else "answer")
    t = KeepAlive(f"http://127.0.0.1:{srv.port}", 1.0, 1.0)
    with pytest.raises(NoAnswer) as e:
        t.post("/api/v1/x", b"{}")
    assert e.value.kind == "ConnectionError"
    assert t.post("/api/v1/x", b"{}")[0] == 200
    assert (srv.requests, srv.connections) == (2, 2)


def test_read_timeout_is_no_answer(server):
    srv = server(lambda n: "hang")
    t = KeepAlive(f"http://127.0.0.1:{srv.port}", 1.0, 0.2)
    t0 = time.monotonic()
    with pytest.raises(NoAnswer) as e:
        t.post("/api/v1/x", b"{}")
    assert e.value.kind == "ReadTimeout" and time.monotonic() - t0 < 2.0
    assert srv.requests == 1


def test_only_http_urls():
    with pytest.raises(ValueError):
        KeepAlive("ftp://127.0.0.1:1", 1.0, 1.0)


def test_a_socket_that_fails_while_being_set_up_is_not_sent(server, monkeypatch):
    """A reset between connect() and the first byte (here: setting the read timeout fails) sends nothing, so it
    must be NotSent, never a raw OSError that leaves the order without an answer."""
    import http.client

    real_connect = http.client.HTTPConnection.connect

    def connect_then_break(self: http.client.HTTPConnection) -> None:
        real_connect(self)

        class Broken:
            def __init__(self, sock: socket.socket) -> None:
                self._sock = sock

            def setsockopt(self, *a: object) -> None:
                raise ConnectionResetError("reset by peer")

            def __getattr__(self, name: str) -> object:
                return getattr(self._sock, name)

        self.sock = Broken(self.sock)

    srv = server(lambda n: "answer")
    monkeypatch.setattr(http.client.HTTPConnection, "connect", connect_then_break)
    t = KeepAlive(f"http://127.0.0.1:{srv.port}", 1.0, 1.0)
    with pytest.raises(NotSent) as e:
        t.post("/api/v1/placeorder", b"{}")
    assert e.value.kind == "ConnectionError" and srv.requests == 0
