"""A local fake of the Fyers HSM data-socket server, and the binary frames it speaks.

Why: the reconnect, resubscribe and watchdog logic around the real SDK can only be trusted if the real
SDK runs against a server that behaves like Fyers: binary HSM frames over a websocket, acks for auth,
mode and subscribe, a snapshot then updates per topic, and connections that drop or fall silent. The
wire layout is the one data_ws.py parses (reference: fyers-datasocket.md §3.2). Loopback only; the
websocket server side is a minimal RFC 6455 implementation on the standard library.

To point the SDK at it: set `sock._FyersDataSocket__url = server.url` (FyersFeed's `ws_url` does this)
and call `patch_sdk_symbol_lookup()` so subscribe() resolves symbols without the Fyers REST API.
The REST side (the profile call and the auth-code exchange) has its own fake: feeds.fake_fyers_api.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from core.types import FyersTick

log = logging.getLogger(__name__)

NO_VALUE = -2147483648  # the wire's "no value"; the SDK then leaves the key out
# data_val from the SDK's map.json, without the trailing type and symbol: the 21 int32 fields of 'sf'
WIRE_FIELDS = ("ltp", "vol_traded_today", "last_traded_time", "exch_feed_time", "bid_size", "ask_size",
               "bid_price", "ask_price", "last_traded_qty", "tot_buy_qty", "tot_sell_qty", "avg_trade_price",
               "OI", "low_price", "high_price", "Yhigh", "Ylow", "lower_ckt", "upper_ckt", "open_price",
               "prev_close_price")
PRICE_FIELDS = frozenset({"ltp", "bid_price", "ask_price", "avg_trade_price", "low_price", "high_price",
                          "open_price", "prev_close_price"})
_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# ---------------------------------------------------------------- symbols and tokens

def hsm_topic(symbol: str) -> str:
    """The fake's HSM topic for a Fyers symbol, e.g. NSE:SBIN-EQ -> sf|nse_cm|<token>."""
    return f"sf|nse_cm|{1000 + zlib.crc32(symbol.encode()) % 90000}"


def offline_symbol_to_hsmtoken(self: Any, symbols: list) -> tuple[dict, list, bool, str]:
    """Drop-in for SymbolConversion.symbol_to_hsmtoken: same return shape, no REST call."""
    return {hsm_topic(s): s for s in symbols}, [], False, ""


def patch_sdk_symbol_lookup() -> Callable[[], None]:
    """Make the SDK resolve symbols offline (see offline_symbol_to_hsmtoken); returns an undo function."""
    from fyers_apiv3.FyersWebsocket import data_ws

    original = data_ws.SymbolConversion.symbol_to_hsmtoken
    data_ws.SymbolConversion.symbol_to_hsmtoken = offline_symbol_to_hsmtoken

    def undo() -> None:
        data_ws.SymbolConversion.symbol_to_hsmtoken = original
    return undo


def fake_jwt(exp: int, hsm_key: str = "fake-hsm-key") -> str:
    """A token the SDK accepts: it only reads exp and hsm_key from the payload (no signature check)."""
    def b64(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64({'exp': int(exp), 'hsm_key': hsm_key})}.signature"


# ---------------------------------------------------------------- HSM frames (server -> client)

def _field(fid: int, value: bytes) -> bytes:
    return struct.pack("!BH", fid, len(value)) + value


def _frame(frame_type: int, fields: list[bytes]) -> bytes:
    body = struct.pack("!BB", frame_type, len(fields)) + b"".join(fields)
    return struct.pack("!H", len(body)) + body


def auth_ok(ack_count: int = 0) -> bytes:
    return _frame(1, [_field(1, b"K"), _field(2, struct.pack("!I", ack_count))])


def mode_ok() -> bytes:
    return _frame(12, [_field(1, b"K")])


def subscribe_ok() -> bytes:
    return _frame(4, [_field(1, b"K")])


def unsubscribe_ok() -> bytes:
    return _frame(5, [_field(1, b"K")])


def custom_message(code: int, text: str, ref_type: int = 0) -> bytes:
    return _frame(51, [_field(1, struct.pack("!i", code)), _field(2, text.encode()), _field(3, bytes([ref_type]))])


def wire_values(tick: FyersTick) -> list[int]:
    """The 21 int32 wire values of a tick: prices in paise (precision 2, multiplier 1)."""
    out = []
    fields: Mapping[str, Any] = tick
    for k in WIRE_FIELDS:
        v = fields.get(k)
        if v is None:
            out.append(NO_VALUE)
        elif k in PRICE_FIELDS:
            out.append(int(round(v * 100)))
        else:
            out.append(int(v))
    return out


def snapshot_entry(topic_id: int, topic: str, tick: FyersTick) -> bytes:
    sym = str(tick.get("symbol", ""))
    name = sym.split(":", 1)[-1]
    vals = wire_values(tick)
    out = [struct.pack("!BHB", 83, topic_id, len(topic)), topic.encode(), struct.pack("!B", len(vals)),
           struct.pack(f"!{len(vals)}i", *vals), b"\x00\x00", struct.pack("!HB", 1, 2)]
    for s in ("NSE", topic.rsplit("|", 1)[-1], name):
        b = s.encode()
        out.append(struct.pack("!B", len(b)) + b)
    return b"".join(out)


def update_entry(topic_id: int, tick: FyersTick) -> bytes:
    vals = wire_values(tick)
    return struct.pack("!BHB", 85, topic_id, len(vals)) + struct.pack(f"!{len(vals)}i", *vals)


def data_frame(message_number: int, entries: list[bytes]) -> bytes:
    body = struct.pack("!BIH", 6, message_number, len(entries)) + b"".join(entries)
    return struct.pack("!H", len(body)) + body


def parse_topics(frame: bytes) -> list[str]:
    """Topics of a client subscribe/unsubscribe frame (its length prefix is unreliable; fields are not)."""
    offset = 4
    fid, flen = struct.unpack("!BH", frame[offset:offset + 3])
    data = frame[offset + 3:offset + 3 + flen]
    count = struct.unpack("!H", data[:2])[0]
    topics, pos = [], 2
    for _ in range(count):
        n = data[pos]
        topics.append(data[pos + 1:pos + 1 + n].decode("ascii"))
        pos += 1 + n
    return topics


# ---------------------------------------------------------------- websocket plumbing (server side)

def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("client closed the connection")
        buf += chunk
    return bytes(buf)


def _read_ws_frame(sock: socket.socket) -> tuple[int, bytes]:
    b0, b1 = _recv_exact(sock, 2)
    opcode, masked, n = b0 & 0x0F, b1 & 0x80, b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", _recv_exact(sock, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", _recv_exact(sock, 8))[0]
    mask = _recv_exact(sock, 4) if masked else b""
    data = _recv_exact(sock, n)
    if masked:
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return opcode, data


def _ws_frame(opcode: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


class FakeConnection:
    """One client connection: answers the handshake and requests; the test drives what it sends."""

    def __init__(self, server: FakeFyersServer, sock: socket.socket, index: int):
        self.server = server
        self.sock = sock
        self.index = index
        self.authenticated = threading.Event()
        self.subscribed = threading.Event()
        self.closed = threading.Event()
        self.subscribe_calls: list[list[str]] = []
        self.topics: set[str] = set()
        self.headers: dict[str, str] = {}
        self._topic_ids: dict[str, int] = {}
        self._snapshotted: set[str] = set()
        self._send_lock = threading.Lock()
        self._msg_no = 0
        self.sent_ticks = 0
        self.pings = 0

    def _handshake(self) -> None:
        raw = b""
        while b"\r\n\r\n" not in raw:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("client went away during the handshake")
            raw += chunk
        lines = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        accept = base64.b64encode(hashlib.sha1((self.headers["sec-websocket-key"] + _WS_GUID).encode()).digest())
        self.sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")

    def _send(self, payload: bytes, opcode: int = 2) -> None:
        with self._send_lock:
            self.sock.sendall(_ws_frame(opcode, payload))

    def serve(self) -> None:
        try:
            self._handshake()
            while True:
                opcode, data = _read_ws_frame(self.sock)
                if opcode == 8:
                    try:
                        self._send(data[:2], opcode=8)
                    except OSError:
                        pass
                    break
                if opcode == 9:
                    self._send(data, opcode=10)
                    continue
                if opcode != 2 or len(data) < 3:
                    continue
                self._request(data)
        except (ConnectionError, OSError, KeyError, struct.error):
            pass
        finally:
            self.closed.set()
            try:
                self.sock.close()
            except OSError:
                pass

    def _request(self, data: bytes) -> None:
        kind = data[2]
        if kind == 1:
            self._send(auth_ok())
            self.authenticated.set()
        elif kind == 12:
            self._send(mode_ok())
        elif kind == 4:
            topics = parse_topics(data)
            self.subscribe_calls.append(topics)
            self.topics.update(topics)
            self._send(subscribe_ok())
            self.subscribed.set()
            if self.server.on_subscribe is not None:
                threading.Thread(target=self.server.on_subscribe, args=(self, topics), daemon=True,
                                 name=f"fake-fyers-script-{self.index}").start()
        elif kind == 5:
            for t in parse_topics(data):
                self.topics.discard(t)
            self._send(unsubscribe_ok())
        elif kind == 11:
            self.pings += 1

    def send_ticks(self, ticks: Iterable[FyersTick], per_frame: int = 50) -> int:
        """Send ticks of subscribed symbols: a snapshot entry the first time a topic is sent on this
        connection, update entries after that. Returns how many were sent."""
        entries: list[bytes] = []
        sent = 0
        for t in ticks:
            topic = hsm_topic(str(t.get("symbol")))
            if topic not in self.topics:
                continue
            tid = self._topic_ids.setdefault(topic, len(self._topic_ids) + 1)
            if topic in self._snapshotted:
                entries.append(update_entry(tid, t))
            else:
                self._snapshotted.add(topic)
                entries.append(snapshot_entry(tid, topic, t))
            sent += 1
            if len(entries) >= per_frame:
                self._flush(entries)
                entries = []
        if entries:
            self._flush(entries)
        self.sent_ticks += sent
        return sent

    def _flush(self, entries: list[bytes]) -> None:
        self._msg_no += 1
        self._send(data_frame(self._msg_no, entries))

    def send_raw(self, frame: bytes) -> None:
        self._send(frame)

    def drop(self) -> None:
        """Cut the TCP connection without a websocket close, as a network failure would."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class FakeFyersServer:
    """Accepts SDK connections on 127.0.0.1; `on_subscribe(conn, topics)` scripts each connection."""

    def __init__(self, on_subscribe: Callable[[FakeConnection, list[str]], Any] | None = None,
                 host: str = "127.0.0.1", port: int = 0):
        self.on_subscribe = on_subscribe
        self._srv = socket.create_server((host, port))
        self.host, self.port = self._srv.getsockname()[:2]
        self.url = f"ws://{self.host}:{self.port}"
        self.connections: list[FakeConnection] = []
        self._stop = False
        self._thread = threading.Thread(target=self._accept, name="fake-fyers-accept", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                sock, _ = self._srv.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = FakeConnection(self, sock, len(self.connections))
            self.connections.append(conn)
            threading.Thread(target=conn.serve, name=f"fake-fyers-conn-{conn.index}", daemon=True).start()

    def wait_connections(self, n: int, timeout: float) -> bool:
        """Wait until the n-th connection has subscribed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.connections) >= n and self.connections[n - 1].subscribed.is_set():
                return True
            time.sleep(0.02)
        return False

    def stop_listening(self) -> None:
        """Refuse new connections (the server is down); open ones are left alone."""
        self._stop = True
        try:
            self._srv.shutdown(socket.SHUT_RDWR)  # wakes the accept() blocked in the other thread
        except OSError:
            pass
        try:
            self._srv.close()
        except OSError:
            pass
        self._thread.join(5)

    def close(self) -> None:
        self.stop_listening()
        for c in self.connections:
            c.drop()


__all__ = ["FakeFyersServer", "FakeConnection", "hsm_topic", "patch_sdk_symbol_lookup", "fake_jwt",
           "offline_symbol_to_hsmtoken", "snapshot_entry", "update_entry", "data_frame", "auth_ok", "mode_ok",
           "subscribe_ok", "custom_message", "wire_values", "WIRE_FIELDS", "NO_VALUE"]
