"""Start-up refuses a mode that would trade against the wrong thing: mode live on replayed ticks, mode live
against the paper broker, mode paper against a real OpenAlgo server. The real driver (a subprocess) and a
real paper broker; exit 2 with a message naming the key, and no order anywhere."""
from __future__ import annotations

import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from feeds.fake_fyers_api import FakeFyersApi
from gateway.results import Ok
from tests.daemon_harness import run_daemon, short_day_config
from tests.paper_fixtures import Broker

FYERS = {"FYERS_APP_ID": "ABCDEFGHIJ-100", "FYERS_ACCESS_TOKEN": "eyJfyers.notreal.sig"}


@pytest.fixture
def paper(tmp_path):
    b = Broker(tmp_path / "broker.sqlite", secrets.token_hex(16), log_file=tmp_path / "broker.log").start()
    yield b
    b.stop()


def no_orders(b: Broker) -> None:
    book = b.gateway().orderbook()
    assert isinstance(book, Ok) and book.value == []


def test_live_mode_on_replayed_ticks_is_refused(tmp_path, paper):
    cfg = short_day_config(tmp_path, mode="live")
    env = {"HOST_SERVER": paper.url, "APP_KEY": paper.key}  # daemon_env sets LIVE_DATA=false
    for args in (["--check"], []):
        run = run_daemon(cfg, f"sqlite:///{tmp_path / 'd.sqlite'}", env, args=args, timeout=120)
        assert run.returncode == 2, run.output[-3000:]
        assert "mode: 'live' is not allowed with LIVE_DATA=false" in run.output
        assert "Traceback" not in run.output
    no_orders(paper)


def test_live_mode_against_the_paper_broker_is_refused(tmp_path, paper):
    cfg = short_day_config(tmp_path, mode="live")
    env = {"HOST_SERVER": paper.url, "APP_KEY": paper.key, "LIVE_DATA": "true", **FYERS}
    for args in (["--check"], []):
        run = run_daemon(cfg, f"sqlite:///{tmp_path / 'd.sqlite'}", env, args=args, timeout=120)
        assert run.returncode == 2, run.output[-3000:]
        assert f"HOST_SERVER: '{paper.url}' is not allowed with mode live -- it is the paper broker" in run.output
        assert "Traceback" not in run.output
        assert paper.key not in run.output
    no_orders(paper)


def test_live_mode_against_an_openalgo_server_passes_the_check(tmp_path):
    fyers = FakeFyersApi(FYERS["FYERS_APP_ID"], "secret").start()  # --check also asks Fyers about the token
    try:
        with fake_openalgo() as (url, seen):
            cfg = short_day_config(tmp_path, mode="live")
            env = {"HOST_SERVER": url, "APP_KEY": "k" * 32, "LIVE_DATA": "true", **FYERS,
                   "FYERS_ACCESS_TOKEN": fyers.new_token(), "FYERS_API_URL": fyers.base}
            run = run_daemon(cfg, f"sqlite:///{tmp_path / 'd.sqlite'}", env, args=["--check"], timeout=120)
    finally:
        fyers.close()
    assert run.returncode == 0, run.output[-3000:]
    assert "is an OpenAlgo server, not the paper broker" in run.output
    # the ping that tells the server apart; then only reads: the warm-up forecast asks for history
    assert seen[0] == "/api/v1/ping" and set(seen[1:]) <= {"/api/v1/history", "/api/v1/intervals"}, seen


def test_paper_mode_against_a_real_openalgo_server_is_refused(tmp_path):
    with fake_openalgo() as (url, seen):
        cfg = short_day_config(tmp_path, mode="paper")
        env = {"HOST_SERVER": url, "APP_KEY": "k" * 32}
        for args in (["--check"], []):
            run = run_daemon(cfg, f"sqlite:///{tmp_path / 'd.sqlite'}", env, args=args, timeout=120)
            assert run.returncode == 2, run.output[-3000:]
            assert (f"HOST_SERVER: '{url}' is not allowed with mode paper -- it is a real OpenAlgo server "
                    "(broker fyers)") in run.output
            assert "Traceback" not in run.output
    # it was asked who it is, and nothing else: no reset, no quotes, no order
    assert seen == ["/api/v1/ping", "/api/v1/ping"]


class fake_openalgo:
    """Stands in for a real OpenAlgo server (which these tests cannot run): answers ping as OpenAlgo does,
    naming its broker, and records every path it is asked for. With `key`, any other key gets OpenAlgo's 403."""

    def __init__(self, key: str | None = None):
        self.key = key

    def __enter__(self) -> tuple[str, list[str]]:
        seen: list[str] = []
        key = self.key

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - stdlib name
                seen.append(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if key is not None and (json.loads(raw or b"{}").get("apikey") != key):
                    code, body = 403, {"status": "error", "message": "Invalid openalgo apikey"}
                elif self.path.rstrip("/") == "/api/v1/ping":
                    code, body = 200, {"status": "success", "data": {"message": "pong", "broker": "fyers"}}
                else:
                    code, body = 404, {"message": "not found"}
                payload = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST

            def log_message(self, *a: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}", seen

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
