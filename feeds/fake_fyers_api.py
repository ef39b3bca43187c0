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
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from feeds.fake_fyers import fake_jwt

AUTH_FAILED = {"s": "error", "code": -16, "message": "Could not authenticate the user"}
BAD_AUTH_CODE = {"s": "error", "code": -413, "message": "Invalid auth code"}
BAD_APP_HASH = {"s": "error", "code": -371, "message": "Invalid app id hash"}


class FakeFyersApi:
    """Issue auth codes with `new_auth_code()`; tokens it hands out (or `accept()`ed ones) pass the profile call."""

    def __init__(self, app_id: str, secret_key: str, token_ttl_s: float = 8 * 3600):
        self.app_id = app_id
        self.secret_key = secret_key
        self.token_ttl_s = token_ttl_s
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
                if self.path.split("?")[0] == "/api/v3/profile":
                    self._send(*api._profile(self.headers.get("Authorization", "")))
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
