"""The paper broker's HTTP framing over raw sockets, against the real process: keep-alive, Connection: close,
HTTP/1.0, Expect: 100-continue, folded and repeated headers, and the refusals of malformed or oversized heads."""
from __future__ import annotations

import json
import socket

import pytest

from tests.paper_fixtures import broker, broker_proc  # noqa: F401 - fixtures


def _request(key: str, head_extra: bytes = b"", version: bytes = b"HTTP/1.1", body: dict | None = None) -> bytes:
    raw = json.dumps(body if body is not None else {"apikey": key}).encode()
    return (b"POST /api/v1/funds " + version + b"\r\nHost: x\r\nContent-Type: application/json\r\n" + head_extra
            + b"Content-Length: " + str(len(raw)).encode() + b"\r\n\r\n" + raw)


def _read_response(f) -> tuple[int, dict[str, str], bytes]:
    status = int(f.readline().split()[1])
    headers: dict[str, str] = {}
    while (line := f.readline()) not in (b"\r\n", b""):
        k, _, v = line.decode().partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, f.read(int(headers.get("content-length", 0)))


@pytest.fixture
def conn(broker):  # noqa: F811 - the fixture
    s = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
    f = s.makefile("rb")
    yield s, f, broker.key
    f.close()
    s.close()


def test_kept_alive_requests_and_a_folded_repeated_header(conn):
    s, f, key = conn
    for extra in (b"", b"X-Note: one\r\n  two\r\nX-Note: ignored\r\n", b"connection: keep-alive\r\n"):
        s.sendall(_request(key, extra))
        status, headers, body = _read_response(f)
        assert status == 200 and json.loads(body)["status"] == "success"
        assert "connection" not in headers


def test_connection_close_and_http_1_0_close_after_the_answer(broker):  # noqa: F811
    for extra, version in ((b"Connection: close\r\n", b"HTTP/1.1"), (b"", b"HTTP/1.0")):
        with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as s, s.makefile("rb") as f:
            s.sendall(_request(broker.key, extra, version))
            status, headers, _ = _read_response(f)
            assert status == 200
            assert f.read() == b""  # the server closed


def test_expect_100_continue_is_answered_before_the_body(conn):
    s, f, key = conn
    raw = json.dumps({"apikey": key}).encode()
    s.sendall(b"POST /api/v1/funds HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: "
              + str(len(raw)).encode() + b"\r\n\r\n")
    assert f.readline().split()[1] == b"100"
    assert f.readline() == b"\r\n"
    s.sendall(raw)
    assert _read_response(f)[0] == 200


@pytest.mark.parametrize("head, status", [
    (b"POST /api/v1/funds HTTP/1.1\r\nNo colon here\r\n\r\n", 400),
    (b"POST /api/v1/funds HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(101)) + b"\r\n", 431),
    (b"POST /api/v1/funds HTTP/1.1\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n", 431),
])
def test_malformed_heads_are_refused(broker, head, status):  # noqa: F811
    with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as s, s.makefile("rb") as f:
        s.sendall(head)
        assert int(f.readline().split()[1]) == status


@pytest.mark.parametrize("line, status", [(b"POST /api/v1/funds HTTP/2.0", b"505"),
                                          (b"POST /api/v1/funds HTTP/x", b"400"), (b"POST /a /b HTTP/1.1", b"400")])
def test_other_request_lines_get_the_stdlib_answer(broker, line, status):  # noqa: F811
    """The stdlib answers these (without a status line: it has not read a version it can answer in)."""
    with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as s, s.makefile("rb") as f:
        s.sendall(line + b"\r\n\r\n")
        assert b"Error code: " + status in f.read()
