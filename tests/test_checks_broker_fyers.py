"""`--check` and start-up ask the broker and Fyers before anything starts, and say what to do when either
refuses. The real driver (a subprocess) against a real paper broker started with another key, and, with
LIVE_DATA=true, against the local fake Fyers API (the SDK's own profile request)."""
from __future__ import annotations

import secrets
import time

import pytest

from feeds.fake_fyers import fake_jwt
from feeds.fake_fyers_api import FakeFyersApi
from gateway.results import Ok
from tests.daemon_harness import run_daemon, short_day_config
from tests.paper_fixtures import Broker
from tests.test_mode_safety import fake_openalgo

APP_ID = "ABCDEFGHIJ-100"


@pytest.fixture
def paper(tmp_path):
    b = Broker(tmp_path / "broker.sqlite", secrets.token_hex(16), log_file=tmp_path / "broker.log").start()
    yield b
    b.stop()


@pytest.fixture
def fyers():
    api = FakeFyersApi(APP_ID, "secret").start()
    yield api
    api.close()


def test_a_key_the_running_paper_broker_refuses_stops_check_and_start_up(tmp_path, paper):
    cfg = short_day_config(tmp_path, mode="paper")
    wrong = secrets.token_hex(16)
    for args in (["--check"], []):
        run = run_daemon(cfg, f"sqlite:///{tmp_path / 'd.sqlite'}", {"HOST_SERVER": paper.url, "APP_KEY": wrong},
                         args=args, timeout=120)
        assert run.returncode == 2, run.output[-3000:]
        assert f"APP_KEY: refused by the paper broker at {paper.url} (pid {paper.proc.pid}, HTTP 403)" in run.output
        assert f"kill {paper.proc.pid}" in run.output and "put the key it was started with in APP_KEY" in run.output
        assert "all checks passed" not in run.output and "Traceback" not in run.output
        assert wrong not in run.output and paper.key not in run.output
    # start-up stopped before anything ran: no log of workers, no order, the broker untouched
    assert "daemon running" not in run.output and not (tmp_path / "logs" / "worker-0.log").exists()
    book = paper.gateway().orderbook()
    assert isinstance(book, Ok) and book.value == []


def test_the_key_the_paper_broker_was_started_with_passes(tmp_path, paper):
    cfg = short_day_config(tmp_path, mode="paper")
    run = run_daemon(cfg, f"sqlite:///{tmp_path / 'd.sqlite'}", {"HOST_SERVER": paper.url, "APP_KEY": paper.key},
                     args=["--check"], timeout=120)
    assert run.returncode == 0, run.output[-3000:]
    assert "all checks passed" in run.output


def test_a_key_the_openalgo_server_refuses_stops_check_and_start_up(tmp_path, fyers):
    """Mode live: OpenAlgo's 403 (a wrong key, or its broker login expired) names where the key comes from."""
    cfg = short_day_config(tmp_path, mode="live")
    with fake_openalgo(key="the-right-key-" + "k" * 20) as (url, seen):
        env = {**fyers_env(fyers, fyers.new_token()), "HOST_SERVER": url, "APP_KEY": "w" * 32}
        for args in (["--check"], []):
            run = run_daemon(cfg, f"sqlite:///{tmp_path / 'd.sqlite'}", env, args=args, timeout=120)
            assert run.returncode == 2, run.output[-3000:]
            assert f"APP_KEY: refused by the OpenAlgo server at {url} (HTTP 403)" in run.output
            assert "API Key page" in run.output and "log in to the broker in OpenAlgo again" in run.output
            assert "Traceback" not in run.output and "w" * 32 not in run.output
    assert seen == ["/api/v1/ping", "/api/v1/ping"]  # asked who it is, nothing else


def fyers_env(api: FakeFyersApi, token: str) -> dict[str, str]:
    return {"LIVE_DATA": "true", "FYERS_APP_ID": APP_ID, "FYERS_ACCESS_TOKEN": token, "FYERS_API_URL": api.base,
            "APP_KEY": "k" * 32}


@pytest.mark.parametrize("token, says", [
    ("not-a-jwt", "FYERS_ACCESS_TOKEN: not a Fyers access token"),
    (fake_jwt(int(time.time()) - 3600), "FYERS_ACCESS_TOKEN: expired at"),
    (fake_jwt(int(time.time()) + 8 * 3600), "FYERS_ACCESS_TOKEN: refused by the Fyers API (code -16"),
])
def test_a_bad_fyers_token_stops_check_and_start_up_before_any_worker(tmp_path, fyers, token, says):
    """Malformed and expired tokens are refused locally; a well-formed one Fyers does not know (revoked by a
    newer login, or another app's) is refused by the profile call. Mode signals_only: no broker is involved."""
    cfg = short_day_config(tmp_path, mode="signals_only")
    for args in (["--check"], []):
        run = run_daemon(cfg, f"sqlite:///{tmp_path / 'd.sqlite'}", fyers_env(fyers, token), args=args, timeout=120)
        assert run.returncode == 2, run.output[-3000:]
        assert says in run.output and "python driver.py fyers-login" in run.output
        assert "Traceback" not in run.output and token not in run.output
        assert "daemon running" not in run.output
    assert not (tmp_path / "logs" / "worker-0.log").exists() and not (tmp_path / "logs" / "feed.log").exists()
    asked = fyers.requests.count(("GET", "/api/v3/profile"))
    assert asked == (2 if "refused" in says else 0)  # a token that is bad locally is never sent


def test_a_good_fyers_token_passes_check(tmp_path, fyers):
    token = fyers.new_token()
    cfg = short_day_config(tmp_path, mode="signals_only")
    run = run_daemon(cfg, f"sqlite:///{tmp_path / 'd.sqlite'}", fyers_env(fyers, token), args=["--check"],
                     timeout=120)
    assert run.returncode == 0, run.output[-3000:]
    assert "ok   Fyers: the API accepts FYERS_APP_ID and today's FYERS_ACCESS_TOKEN" in run.output
    assert "all checks passed" in run.output and token not in run.output
    assert fyers.requests == [("GET", "/api/v3/profile")]


def test_fyers_api_url_only_on_loopback_or_fyers(tmp_path, fyers):
    cfg = short_day_config(tmp_path, mode="signals_only")
    env = {**fyers_env(fyers, fyers.new_token()), "FYERS_API_URL": "http://example.com/api/v3"}
    run = run_daemon(cfg, f"sqlite:///{tmp_path / 'd.sqlite'}", env, args=["--check"], timeout=120)
    assert run.returncode == 2, run.output[-3000:]
    assert "FYERS_API_URL: 'http://example.com/api/v3' is not allowed" in run.output
    assert fyers.requests == []


def test_paper_mode_with_nothing_answering_off_loopback_is_refused():
    """The daemon starts a paper broker only on loopback: elsewhere, nothing answering is a problem now, not
    a start-up failure later. On loopback it is fine: the daemon starts one there with APP_KEY."""
    from core.enums import ExecutionMode
    from gateway.identity import ServerIdentity, ServerKind, server_problems

    down = ServerIdentity(ServerKind.UNREACHABLE, "ConnectionError")
    far = server_problems(ExecutionMode.PAPER, "http://192.0.2.1:5000", "k" * 32, ident=down)
    assert len(far) == 1 and far[0].startswith("HOST_SERVER: 'http://192.0.2.1:5000' is not answering")
    assert server_problems(ExecutionMode.PAPER, "http://127.0.0.1:5000", "k" * 32, ident=down) == []
