"""The gateway's HTTP transport: one kept-alive HTTP/1.1 connection per calling thread, on http.client.

Why not requests: on loopback its own Python work was about half of a placeorder's round trip (~0.6 of
1.2 ms: building and merging the request, the environment's proxy settings, adapters, hooks). An order's
acknowledgement waits for that round trip. This sends the same POST with a JSON body and reads the answer.

What a caller must know, and the gateway relies on:
- NotSent: the request never left (the connection could not be made: refused, connect timeout, TLS
  handshake). Safe to treat as "not placed".
- NoAnswer: the request may have reached the server, and no usable answer came (read timeout, the
  connection closed or reset mid-call). The outcome is unknown; an order must be looked up, never resent.
- A kept-alive connection the server has since closed is noticed before it is used (it reads as ready:
  end of stream) and replaced by a new one, so an idle spell does not turn the next order into a NoAnswer.
- Timeouts as requests took them: one for connecting, one for each read.
- A request leaves in one write, its head and body together: http.client writes them apart, two segments
  with TCP_NODELAY, so the server wakes for the head and again for the body (two reads, two wake-ups).
- The connection goes straight to the host: proxy settings in the environment (HTTP_PROXY...) are not used.
  HTTPS verifies the server against certifi's bundle, the one requests used.
"""
from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
from urllib.parse import urlsplit

HEADERS = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "nse-daemon-gateway"}


class NotSent(Exception):
    """The request did not leave this process; `kind` names what failed."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


class NoAnswer(Exception):
    """The request may have been received; no usable answer came back. `kind` names what failed."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


class _OneWrite:
    """http.client's request writing with the head and a bytes body joined into one send."""

    _buffer: list[bytes]

    def _send_output(self, message_body: object = None, encode_chunked: bool = False) -> None:
        if isinstance(message_body, bytes) and not encode_chunked:
            self._buffer.extend((b"", b""))
            msg = b"\r\n".join(self._buffer) + message_body
            del self._buffer[:]
            self.send(msg)  # type: ignore[attr-defined]
            return
        super()._send_output(message_body, encode_chunked)  # type: ignore[misc]


class _Connection(_OneWrite, http.client.HTTPConnection):
    pass


class _SecureConnection(_OneWrite, http.client.HTTPSConnection):
    pass


def _dropped(sock: socket.socket | None) -> bool:
    """An idle kept-alive socket that is readable has been closed by the server (or holds junk): not reusable."""
    if sock is None:
        return True
    try:
        if hasattr(select, "poll"):
            p = select.poll()
            p.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
            return bool(p.poll(0))
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


class KeepAlive:
    """POSTs to one server; a connection per thread, reused while the server keeps it open. Thread-safe."""

    def __init__(self, base_url: str, connect_timeout_s: float, read_timeout_s: float):
        u = urlsplit(base_url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.https = u.scheme == "https"
        self.host = u.hostname
        self.port = u.port or (443 if self.https else 80)
        self.prefix = u.path.rstrip("/")
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self._ssl: ssl.SSLContext | None = None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: set[http.client.HTTPConnection] = set()

    def _context(self) -> ssl.SSLContext:
        if self._ssl is None:
            import certifi

            self._ssl = ssl.create_default_context(cafile=certifi.where())
        return self._ssl

    def _connect(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection
        if self.https:
            conn = _SecureConnection(self.host, self.port, timeout=self.connect_timeout_s, context=self._context())
        else:
            conn = _Connection(self.host, self.port, timeout=self.connect_timeout_s)
        try:  # nothing is sent until the socket is set up: any failure here is NotSent
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.sock.settimeout(self.read_timeout_s)
        except TimeoutError as e:
            conn.close()
            raise NotSent("ConnectTimeout", str(e)) from e
        except ssl.SSLError as e:
            conn.close()
            raise NotSent("SSLError", str(e)) from e
        except OSError as e:
            conn.close()
            raise NotSent("ConnectionError", str(e)) from e
        with self._lock:
            self._conns.add(conn)
        return conn

    def _drop(self, conn: http.client.HTTPConnection) -> None:
        self._local.conn = None
        with self._lock:
            self._conns.discard(conn)
        conn.close()

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """(HTTP status, body) of one POST; raises NotSent or NoAnswer."""
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None and _dropped(conn.sock):
            self._drop(conn)
            conn = None
        if conn is None:
            conn = self._local.conn = self._connect()
        try:
            conn.request("POST", self.prefix + path, body=body, headers=HEADERS)
            r = conn.getresponse()
            data = r.read()
        except TimeoutError as e:
            self._drop(conn)
            raise NoAnswer("ReadTimeout", str(e)) from e
        except (OSError, http.client.HTTPException) as e:
            self._drop(conn)
            raise NoAnswer("ConnectionError", f"{type(e).__name__}: {e}") from e
        if r.will_close:
            self._drop(conn)
        return r.status, data

    def close(self) -> None:
        """Close every thread's connection (a thread that calls again gets a new one)."""
        with self._lock:
            conns, self._conns = self._conns, set()
        for c in conns:
            c.close()
        self._local = threading.local()
