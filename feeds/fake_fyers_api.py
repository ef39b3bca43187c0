"""A local fake of the two Fyers REST endpoints the daemon calls through fyers_apiv3 (loopback only).

Why: the token check (`--check`, start-up) and `driver.py fyers-login` are only trustworthy if the real SDK
runs its real requests against something that answers as Fyers does. Point the SDK at it with
FYERS_API_URL=<server.base> (see feeds.fyers_api). What the SDK sends, from fyersModel.py 3.2.0:

- `FyersModel.get_profile()`: GET {API}/profile with header `Authorization: APP_ID:TOKEN` (and `version: 3`).
  Answer: 200 {"s":"ok","code":200,"message":"","data":{...}}; an unknown or expired token: 401
  {"s":"error","code":-16,"message":"Could not authenticate the user"} (the SDK returns that body).
- `SessionModel.generate_token()`: POST {API}/validate-authcode, JSON {"grant_type":"authorization_code",
  "appIdHash": sha256("APP_ID:SECRET"), "code": AUTH_CODE}. Answer: {"s":"ok","code":200,"message":"",
  "access_token":JWT,"refresh_token":JWT}; a wrong hash or an unknown or used code: 400 with s "error".
  An auth code works once.
- `FyersModel.history(data)`: GET {DATA_API}/history?symbol=NSE:SBIN-EQ&resolution=1&date_format=1&range_from=
  YYYY-MM-DD&range_to=YYYY-MM-DD&cont_flag=1 with the same Authorization header. Answer: 200 {"s":"ok",
  "candles":[[epoch,o,h,l,c,v],...]} from the synthetic generator (history.synthetic, `seed`), range_to included;
  {"s":"no_data","candles":[]} when there are none; 400 s "error" for a bad resolution, a bad date or a range
  longer than Fyers allows (100 days intraday, 366 daily); 429 {"s":"error","code":429} past `history_per_s`
  requests in a second of `clock` (a test that must see the limit whatever the machine's speed gives a clock
  that only its own pauses move). Point the SDK at it with fyersModel.Config.DATA_API = <server.data_base>.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from feeds.fake_fyers import fake_jwt

AUTH_FAILED = {"s": "error", "code": -16, "message": "Could not authenticate the user"}
BAD_AUTH_CODE = {"s": "error", "code": -413, "message": "Invalid auth code"}
BAD_APP_HASH = {"s": "error", "code": -371, "message": "Invalid app id hash"}
HISTORY_LIMITED = {"s": "error", "code": 429, "message": "request limit reached"}
_RESOLUTIONS = {"5S": 5, "10S": 10, "15S": 15, "30S": 30, "1": 60, "2": 120, "3": 180, "5": 300, "10": 600,
                "15": 900, "20": 1200, "30": 1800, "60": 3600, "1D": 86_400, "D": 86_400}


class FakeFyersApi:
    """Issue auth codes with `new_auth_code()`; tokens it hands out (or `accept()`ed ones) pass the profile call."""

    def __init__(self, app_id: str, secret_key: str, token_ttl_s: float = 8 * 3600, seed: int = 7,
                 history_per_s: int = 10, candles: Callable[[str, str, date, int], Sequence[Any]] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.app_id = app_id
        self.secret_key = secret_key
        self.token_ttl_s = token_ttl_s
        self.seed = seed
        self.history_per_s = history_per_s
        self._clock = clock  # the history limit's second
        self._history_times: deque[float] = deque()
        self._candles = candles  # (symbol, exchange, day, seconds) -> Candles; default: the synthetic generator
        self._lock = threading.Lock()
        self._codes: set[str] = set()
        self._tokens: set[str] = set()
        self.requests: list[tuple[str, str]] = []  # (method, path), for tests
        self._srv = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._srv.daemon_threads = True
        self._thread = threading.Thread(target=self._srv.serve_forever, name="fake-fyers-api", daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._srv.server_address[1]}/api/v3"

    @property
    def data_base(self) -> str:
        return f"http://127.0.0.1:{self._srv.server_address[1]}/data"

    def start(self) -> FakeFyersApi:
        self._thread.start()
        return self

    def close(self) -> None:
        self._srv.shutdown()
        self._srv.server_close()

    def new_auth_code(self) -> str:
        code = fake_jwt(int(time.time()) + 300, hsm_key="auth-code-" + str(len(self._codes)))
        with self._lock:
            self._codes.add(code)
        return code

    def new_token(self) -> str:
        token = fake_jwt(int(time.time() + self.token_ttl_s), hsm_key=f"hsm-{time.monotonic_ns()}")
        self.accept(token)
        return token

    def accept(self, token: str) -> None:
        with self._lock:
            self._tokens.add(token)

    def _profile(self, auth: str) -> tuple[int, dict]:
        app, _, token = auth.partition(":")
        with self._lock:
            ok = app == self.app_id and token in self._tokens
        if not ok:
            return 401, dict(AUTH_FAILED)
        return 200, {"s": "ok", "code": 200, "message": "",
                     "data": {"fy_id": "XF0000", "name": "TEST USER", "display_name": "TEST"}}

    def _history(self, auth: str, query: str) -> tuple[int, dict]:
        from history.synthetic import synthetic_day

        day_candles = self._candles or (lambda sym, exch, d, sec: synthetic_day(sym, exch, d, sec, self.seed))
        code, body = self._profile(auth)
        if code != 200:
            return code, body
        now = self._clock()
        with self._lock:
            while self._history_times and self._history_times[0] <= now - 1.0:
                self._history_times.popleft()
            if len(self._history_times) >= self.history_per_s:
                return 429, dict(HISTORY_LIMITED)
            self._history_times.append(now)
        q = {k: v[0] for k, v in parse_qs(query).items()}
        seconds = _RESOLUTIONS.get(q.get("resolution", ""))
        ticker = q.get("symbol", "")
        exchange, _, rest = ticker.partition(":")
        if seconds is None or not rest.endswith("-EQ") or q.get("date_format") != "1":
            return 400, {"s": "error", "code": -50, "message": "Invalid input"}
        try:
            first, last = date.fromisoformat(q["range_from"]), date.fromisoformat(q["range_to"])
        except (KeyError, ValueError):
            return 400, {"s": "error", "code": -50, "message": "Invalid date"}
        span = (last - first).days + 1
        if span < 1 or span > (366 if seconds >= 86_400 else 100):
            return 400, {"s": "error", "code": -50, "message": f"Range of {span} days is not allowed"}
        candles = [[c.start, c.open, c.high, c.low, c.close, c.volume]
                   for n in range(first.toordinal(), last.toordinal() + 1)
                   for c in day_candles(rest[:-3], exchange, date.fromordinal(n), seconds)]
        if not candles:
            return 200, {"s": "no_data", "candles": []}
        return 200, {"s": "ok", "candles": candles}

    def _validate(self, body: dict) -> tuple[int, dict]:
        want = hashlib.sha256(f"{self.app_id}:{self.secret_key}".encode()).hexdigest()
        if body.get("appIdHash") != want:
            return 400, dict(BAD_APP_HASH)
        code = body.get("code")
        with self._lock:
            known = body.get("grant_type") == "authorization_code" and code in self._codes
            self._codes.discard(code)
        if not known:
            return 400, dict(BAD_AUTH_CODE)
        token = self.new_token()
        return 200, {"s": "ok", "code": 200, "message": "", "access_token": token,
                     "refresh_token": fake_jwt(int(time.time()) + 15 * 86400, hsm_key="refresh")}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_a: Any) -> None:  # quiet; tests read api.requests
                pass

            def _send(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                api.requests.append(("GET", self.path))
                url = urlparse(self.path)
                if url.path == "/api/v3/profile":
                    self._send(*api._profile(self.headers.get("Authorization", "")))
                elif url.path == "/data/history":
                    self._send(*api._history(self.headers.get("Authorization", ""), url.query))
                else:
                    self._send(404, {"s": "error", "code": 404, "message": "not found"})

            def do_POST(self) -> None:  # noqa: N802
                api.requests.append(("POST", self.path))
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                if self.path == "/api/v3/validate-authcode" and isinstance(body, dict):
                    self._send(*api._validate(body))
                else:
                    self._send(404, {"s": "error", "code": 404, "message": "not found"})

        return Handler
