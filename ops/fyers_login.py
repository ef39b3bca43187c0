"""`python driver.py fyers-login`: the day's Fyers access token into `.env`, by the SDK's auth-code flow.

Why: the Fyers access token lasts one trading day, and pasting a JWT by hand into `.env` every morning is
where a trader makes mistakes (a stale token, the APP_ID: prefix, a truncated paste). This prints the login
URL, reads the redirected URL (or the bare auth code) from stdin, exchanges it through fyers_apiv3 and
writes FYERS_ACCESS_TOKEN in place. The secret, the code and the token are never printed or logged.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TextIO

from core.clock import fmt_ist
from core.env_file import set_value

log = logging.getLogger(__name__)

EXIT_OK, EXIT_ERROR, EXIT_CONFIG = 0, 1, 2


def _settings(env_path: Path) -> dict[str, str]:
    """The three settings the flow needs: the process environment wins over the file, as for the daemon."""
    from dotenv import dotenv_values

    vals = {k: (v or "") for k, v in dotenv_values(env_path).items()} if env_path.exists() else {}
    for k in ("FYERS_APP_ID", "FYERS_SECRET_KEY", "FYERS_REDIRECT_URI"):
        if os.environ.get(k):
            vals[k] = os.environ[k]
    return {k: vals.get(k, "").strip() for k in ("FYERS_APP_ID", "FYERS_SECRET_KEY", "FYERS_REDIRECT_URI")}


def _problems(s: dict[str, str], env_path: Path) -> list[str]:
    if not env_path.is_file():
        return [f"{env_path}: no such file -- ./dev.sh setup writes .env from .env.example; add the Fyers "
                "settings there"]
    out = []
    app = s["FYERS_APP_ID"]
    if not app:
        out.append(f"FYERS_APP_ID: unset in {env_path} -- the app id from myapi.fyers.in, e.g. XXXXXXXXXX-100")
    elif ":" in app or " " in app:
        out.append(f"FYERS_APP_ID: {app!r} is not allowed -- the app id alone, e.g. XXXXXXXXXX-100")
    if not s["FYERS_SECRET_KEY"]:
        out.append(f"FYERS_SECRET_KEY: unset in {env_path} -- the app's secret id from myapi.fyers.in")
    uri = s["FYERS_REDIRECT_URI"]
    if not uri:
        out.append(f"FYERS_REDIRECT_URI: unset in {env_path} -- the redirect URL registered with the app")
    elif not uri.startswith(("https://", "http://")):
        out.append(f"FYERS_REDIRECT_URI: {uri!r} is not allowed -- use the http(s) URL registered with the app")
    return out


def run(env_path: Path, stdin: TextIO = sys.stdin, out: TextIO = sys.stdout) -> int:
    """The whole flow; the exit code: 0 written, 2 a setting or the paste is wrong or Fyers refused, 1 no answer."""
    from feeds.fyers import FeedError, token_expiry
    from feeds.fyers_api import (
        FyersApiError,
        FyersRefused,
        api_base,
        exchange_auth_code,
        login_url,
        new_state,
        parse_auth_code,
    )

    s = _settings(env_path)
    problems = _problems(s, env_path)
    try:
        api_base()
    except FyersApiError as e:
        problems.append(str(e))
    if problems:
        print("Cannot log in to Fyers: fix these in .env:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return EXIT_CONFIG
    state = new_state()
    print("1. Open this URL in a browser and log in to Fyers (PIN / 2FA):\n", file=out)
    print(f"   {login_url(s['FYERS_APP_ID'], s['FYERS_REDIRECT_URI'], state)}\n", file=out)
    print("2. The browser then goes to your redirect URL (the page itself may fail to load; that is fine).\n"
          "   Paste the whole address it shows (or just the auth_code) and press Enter:", file=out)
    out.flush()
    line = stdin.readline()
    try:
        code = parse_auth_code(line, state)
    except ValueError as e:
        print(f"fyers-login: the pasted text is not allowed -- {e}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        token = exchange_auth_code(s["FYERS_APP_ID"], s["FYERS_SECRET_KEY"], s["FYERS_REDIRECT_URI"], code)
    except FyersApiError as e:
        print(f"fyers-login: {e}", file=sys.stderr)
        return EXIT_CONFIG if isinstance(e, FyersRefused) else EXIT_ERROR
    try:
        exp = token_expiry(token)
    except FeedError as e:
        print(f"fyers-login: Fyers answered with a token the data socket would not take ({e}); nothing written",
              file=sys.stderr)
        return EXIT_ERROR
    try:
        set_value(env_path, "FYERS_ACCESS_TOKEN", token)
    except (OSError, ValueError) as e:
        print(f"fyers-login: could not write {env_path}: {e}", file=sys.stderr)
        return EXIT_ERROR
    print(f"wrote today's FYERS_ACCESS_TOKEN into {env_path} (valid until {fmt_ist(exp)}); "
          "check it with: python driver.py --check", file=out)
    if os.environ.get("FYERS_ACCESS_TOKEN"):
        print("fyers-login: FYERS_ACCESS_TOKEN is also set in the environment, and the environment wins over "
              ".env: unset it (or set it to the new token) before starting the daemon", file=sys.stderr)
    return EXIT_OK
