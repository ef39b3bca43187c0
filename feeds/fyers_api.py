"""The two Fyers REST calls the daemon makes through fyers_apiv3, both before anything trades.

- `token_problems`: is FYERS_ACCESS_TOKEN good today? First what can be seen locally (a v3 JWT, not expired,
  valid long enough for the feed), then the SDK's profile call, which Fyers answers only for a live token.
  `--check` and start-up run it before any worker starts, so a bad token never kills a running day.
- `login_url` / `exchange_auth_code`: the SDK's auth-code flow behind `driver.py fyers-login`.

The SDK's REST base URL is the class attribute `fyersModel.Config.API` (it takes no URL argument).
FYERS_API_URL replaces it for a run: tests point it at feeds.fake_fyers_api on loopback. Only loopback or
https on fyers.in is accepted, so a token is never sent elsewhere. The SDK's requests have no timeout, so
each call runs in a daemon thread with a deadline. Tokens, secrets and codes never reach a log line or a
message; the SDK writes its own fyersApi.log / fyersRequests.log (no token in them) into `log_dir`.
"""
from __future__ import annotations

import logging
import os
import secrets as pysecrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from core.net import is_loopback_url
from feeds.fyers import FeedError, check_token, socket_token

log = logging.getLogger(__name__)

API_URL_ENV = "FYERS_API_URL"
LOGIN_HINT = "run `python driver.py fyers-login` (or ./dev.sh run fyers-login) for today's token"


class FyersApiError(Exception):
    """A Fyers REST call could not be made or was refused; the message says what to do."""


class FyersRefused(FyersApiError):
    """Fyers answered, and said no (a wrong code or secret): the user's to fix, not the network's."""


def api_base(environ: dict[str, str] | None = None) -> str | None:
    """The REST base URL to use instead of the SDK's, from FYERS_API_URL; None: the SDK's own."""
    raw = (os.environ if environ is None else environ).get(API_URL_ENV, "").strip().rstrip("/")
    if not raw:
        return None
    u = urlparse(raw)
    loopback = u.scheme == "http" and is_loopback_url(raw)
    fyers = u.scheme == "https" and (u.hostname or "").endswith(".fyers.in")
    if not (loopback or fyers):
        raise FyersApiError(f"{API_URL_ENV}: {raw!r} is not allowed -- leave it unset (the Fyers API), or use "
                            "http://127.0.0.1:PORT/api/v3 for a local test server")
    return raw


_SDK_API: list[str] = []  # the SDK's own base URL, kept the first time it is replaced


def _use_base(base: str | None) -> None:
    """Point the SDK at `base`, or back at its own URL (a process may check twice with different settings)."""
    from fyers_apiv3 import fyersModel

    if not _SDK_API:
        _SDK_API.append(fyersModel.Config.API)
    fyersModel.Config.API = base or _SDK_API[0]


def _with_deadline(fn: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """fn() in a daemon thread; FyersApiError if it has not answered within timeout_s."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except Exception as e:  # noqa: BLE001 - reported below without its text (it may hold a URL with a code)
            box["error"] = type(e).__name__

    t = threading.Thread(target=run, name=f"fyers-{what}", daemon=True)
    t.start()
    t.join(timeout_s)
    if t.is_alive():
        raise FyersApiError(f"the Fyers API did not answer {what} within {timeout_s:.0f}s -- check the network")
    if "error" in box:
        raise FyersApiError(f"the Fyers API call {what} failed ({box['error']}) -- check the network")
    return box.get("value")


def _refusal(resp: Any) -> str:
    """Fyers' own words for a refusal: its code and message (never a token)."""
    if not isinstance(resp, dict):
        return "an answer that is not JSON"
    return f"code {resp.get('code')}: {str(resp.get('message') or '')[:120]}"


def token_problems(app_id: str, access_token: str, *, min_valid_s: float = 1800.0, log_dir: Path | None = None,
                   timeout_s: float = 10.0) -> list[str]:
    """Problems "KEY: ... -- what to do" with today's Fyers credentials; [] when Fyers accepts them."""
    try:
        token = socket_token(app_id, access_token)
        check_token(token, min_valid_s)
    except FeedError as e:
        key = _key_of(str(e))
        why = str(e).removeprefix(key).lstrip()
        return [f"{key}: {why.removeprefix('is ')} ({LOGIN_HINT})"]
    try:
        base = api_base()
    except FyersApiError as e:
        return [str(e)]
    bare = token.split(":", 1)[1]

    def profile() -> Any:
        from fyers_apiv3 import fyersModel

        _use_base(base)
        path = str(log_dir) if log_dir is not None else None
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
        return fyersModel.FyersModel(client_id=app_id.strip(), token=bare, is_async=False, log_path=path,
                                     log_level="ERROR").get_profile()

    try:
        resp = _with_deadline(profile, timeout_s, "the profile call")
    except FyersApiError as e:
        return [f"FYERS_ACCESS_TOKEN: not confirmed: {e}"]
    if isinstance(resp, dict) and resp.get("s") == "ok":
        log.info("Fyers accepted the access token (profile call)")
        return []
    if isinstance(resp, dict) and resp.get("code") == -99:  # the SDK's own answer when no request got through
        return ["FYERS_ACCESS_TOKEN: not confirmed: the Fyers API could not be reached -- check the network"]
    return [f"FYERS_ACCESS_TOKEN: refused by the Fyers API ({_refusal(resp)}) -- it has expired, was revoked "
            f"by a newer login, or belongs to another app than FYERS_APP_ID; {LOGIN_HINT}"]


def _key_of(message: str) -> str:
    return "FYERS_APP_ID" if message.startswith("FYERS_APP_ID") else "FYERS_ACCESS_TOKEN"


# ---------------------------------------------------------------- the auth-code flow (fyers-login)

def _session(app_id: str, secret_key: str, redirect_uri: str, state: str) -> Any:
    from fyers_apiv3 import fyersModel

    _use_base(api_base())
    return fyersModel.SessionModel(client_id=app_id, secret_key=secret_key, redirect_uri=redirect_uri,
                                   response_type="code", grant_type="authorization_code", state=state)


def new_state() -> str:
    """A random `state` for the login URL: the redirect must carry it back unchanged."""
    return pysecrets.token_urlsafe(12)


def login_url(app_id: str, redirect_uri: str, state: str) -> str:
    """The SDK's login URL (no secret in it) for the user to open in a browser."""
    return _session(app_id, "", redirect_uri, state).generate_authcode()


def parse_auth_code(text: str, state: str) -> str:
    """The auth code from what the user pasted: the whole redirected URL, or the bare code.
    ValueError (without the pasted text) when it is neither."""
    text = text.strip()
    if not text:
        raise ValueError("nothing was pasted")
    if "://" in text or text.startswith("?") or "auth_code=" in text:
        query = parse_qs(urlparse(text if "://" in text else "x://x/?" + text.lstrip("?")).query)
        codes = query.get("auth_code") or []
        if not codes:
            raise ValueError("the URL has no auth_code parameter: paste the address the browser shows after "
                             "the login (it contains auth_code=...)")
        states = query.get("state")
        got_state = states[0] if states else None
        if got_state is not None and got_state != state:
            raise ValueError("the URL's state is not this login's: it is from an earlier login; open the new "
                             "login URL and paste its redirect")
        text = codes[0]
    if not _looks_like_code(text):
        raise ValueError("that is not an auth code (expected a JWT-like string: letters, digits, '-', '_' and "
                         "two dots), nor a URL with auth_code=")
    return text


def _looks_like_code(code: str) -> bool:
    parts = code.split(".")
    ok = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
    return len(parts) == 3 and all(parts) and all(set(p) <= ok for p in parts) and len(code) >= 20


def exchange_auth_code(app_id: str, secret_key: str, redirect_uri: str, code: str, *,
                       timeout_s: float = 20.0) -> str:
    """The access token Fyers gives for the auth code (the SDK's generate_token); FyersApiError if refused."""
    def call() -> Any:
        s = _session(app_id, secret_key, redirect_uri, "")
        s.set_token(code)
        return s.generate_token()

    resp = _with_deadline(call, timeout_s, "the auth-code exchange")
    token = resp.get("access_token") if isinstance(resp, dict) else None
    if not (isinstance(resp, dict) and resp.get("s") == "ok" and isinstance(token, str) and token):
        raise FyersRefused(f"Fyers refused the auth code ({_refusal(resp)}) -- an auth code works once and "
                            "only for minutes: log in again; if it keeps failing, check FYERS_SECRET_KEY and "
                            "FYERS_REDIRECT_URI against the app's page on myapi.fyers.in")
    return token
