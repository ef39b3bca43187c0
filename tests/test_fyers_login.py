"""`python driver.py fyers-login`: the real driver (a subprocess) runs the SDK's auth-code flow against the
local fake Fyers API (feeds.fake_fyers_api, the SDK's own requests), and the day's token lands in .env in
place: other lines and comments kept, mode 600, and no secret, code or token on the terminal."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from dotenv import dotenv_values

from feeds.fake_fyers_api import FakeFyersApi
from feeds.fyers_api import parse_auth_code

ROOT = Path(__file__).resolve().parent.parent
APP_ID, SECRET, REDIRECT = "ABCDEFGHIJ-100", "S3cretKey-" + "x" * 10, "https://127.0.0.1:8443/fyers/callback"
ENV_TEXT = f"""# my settings
APP_KEY=keep-this-app-key-123
HOST_SERVER=http://127.0.0.1:5000

# Fyers
FYERS_APP_ID={APP_ID}            # client id
FYERS_SECRET_KEY={SECRET}
FYERS_REDIRECT_URI={REDIRECT}
FYERS_ACCESS_TOKEN=      # today's access token
"""


@pytest.fixture
def api():
    a = FakeFyersApi(APP_ID, SECRET).start()
    yield a
    a.close()


@pytest.fixture
def env_file(tmp_path):
    p = tmp_path / ".env"
    p.write_text(ENV_TEXT)
    p.chmod(0o644)
    return p


def child_env(api: FakeFyersApi) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FYERS_")}
    env.update(FYERS_API_URL=api.base, PYTHONUNBUFFERED="1")
    return env


def login(api: FakeFyersApi, env_file: Path, paste: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "driver.py"), "fyers-login", "--env-file", str(env_file)],
                          input=paste + "\n", capture_output=True, text=True, env=child_env(api), cwd=ROOT,
                          timeout=timeout)


def assert_kept(env_file: Path, token: str | None) -> None:
    """Every other line is as the user wrote it; only FYERS_ACCESS_TOKEN's value changed."""
    want = ENV_TEXT if token is None else ENV_TEXT.replace("FYERS_ACCESS_TOKEN=      #",
                                                          f"FYERS_ACCESS_TOKEN={token}      #")
    assert env_file.read_text() == want


def test_the_redirected_url_is_exchanged_and_the_token_written_in_place(api, env_file):
    """The user pastes the whole redirected URL, with the state of the login URL printed a moment before."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "driver.py"), "fyers-login", "--env-file", str(env_file)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=child_env(api), cwd=ROOT)
    timer = threading.Timer(60, proc.kill)  # a deadline for the blocking reads below
    timer.start()
    try:
        url = ""
        while not url:
            line = proc.stdout.readline()
            assert line, "fyers-login ended before printing the login URL: " + proc.stderr.read()
            if "generate-authcode?" in line:
                url = line.strip()
        q = parse_qs(urlparse(url).query)
        assert url.startswith(api.base + "/generate-authcode?")
        assert q["client_id"] == [APP_ID] and q["redirect_uri"] == [REDIRECT] and q["response_type"] == ["code"]
        assert SECRET not in url
        code = api.new_auth_code()  # what Fyers issues after the browser login
        redirected = f"{REDIRECT}?s=ok&code=200&auth_code={code}&state={q['state'][0]}"
        out, err = proc.communicate(redirected + "\n", timeout=60)
    finally:
        timer.cancel()
    assert proc.returncode == 0, out + err
    token = dotenv_values(env_file)["FYERS_ACCESS_TOKEN"]
    assert token and token.count(".") == 2
    assert_kept(env_file, token)
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    for secret in (token, code, SECRET):
        assert secret not in out + err
    assert "wrote today's FYERS_ACCESS_TOKEN" in out
    assert ("POST", "/api/v3/validate-authcode") in api.requests
    # the token written is one Fyers accepts: --check's profile call would pass with it
    from feeds.fyers_api import token_problems
    os.environ["FYERS_API_URL"] = api.base
    try:
        assert token_problems(APP_ID, token, log_dir=env_file.parent / "logs") == []
    finally:
        del os.environ["FYERS_API_URL"]


def test_a_bare_code_works_and_a_used_one_is_refused(api, env_file):
    code = api.new_auth_code()
    run = login(api, env_file, code)
    assert run.returncode == 0, run.stdout + run.stderr
    first = dotenv_values(env_file)["FYERS_ACCESS_TOKEN"]
    assert first
    again = login(api, env_file, code)  # an auth code works once
    assert again.returncode == 2, again.stdout + again.stderr
    assert "Fyers refused the auth code" in again.stderr and "log in again" in again.stderr
    assert "Traceback" not in again.stdout + again.stderr
    assert dotenv_values(env_file)["FYERS_ACCESS_TOKEN"] == first


@pytest.mark.parametrize("paste, why", [
    ("", "nothing was pasted"),
    ("hello world", "not an auth code"),
    (REDIRECT + "?s=ok&code=200", "no auth_code parameter"),
    (REDIRECT + "?auth_code=a.b.c&state=old", "not this login's"),
])
def test_a_malformed_paste_is_exit_2_and_nothing_is_written(api, env_file, paste, why):
    run = login(api, env_file, paste)
    assert run.returncode == 2, run.stdout + run.stderr
    assert why in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
    assert_kept(env_file, None)
    assert ("POST", "/api/v3/validate-authcode") not in api.requests


def test_a_wrong_secret_is_refused_by_fyers(api, env_file):
    env_file.write_text(ENV_TEXT.replace(SECRET, "not-the-secret"))
    run = login(api, env_file, api.new_auth_code())
    assert run.returncode == 2, run.stdout + run.stderr
    assert "check FYERS_SECRET_KEY" in run.stderr
    assert "not-the-secret" not in run.stdout + run.stderr
    assert dotenv_values(env_file)["FYERS_ACCESS_TOKEN"] == ""


def test_missing_settings_are_named(api, tmp_path):
    p = tmp_path / ".env"
    p.write_text("APP_KEY=x\nFYERS_APP_ID=\n")
    run = login(api, p, "")
    assert run.returncode == 2
    for key in ("FYERS_APP_ID: unset", "FYERS_SECRET_KEY: unset", "FYERS_REDIRECT_URI: unset"):
        assert key in run.stderr
    assert "Traceback" not in run.stderr
    assert api.requests == []


def test_parse_auth_code():
    code = "eyJhbGciOi.eyJpc3MiOiJhcGkubG9naW4.sig-_01"
    assert parse_auth_code(code, "st") == code
    assert parse_auth_code(f"  {REDIRECT}?s=ok&code=200&auth_code={code}&state=st \n", "st") == code
    assert parse_auth_code(f"{REDIRECT}?auth_code={code}", "st") == code  # no state: accepted
    assert parse_auth_code(f"?auth_code={code}&state=st", "st") == code
    for bad in ("", "a.b", "short.a.b", f"{code} extra", f"{REDIRECT}?auth_code={code}&state=other"):
        with pytest.raises(ValueError) as e:
            parse_auth_code(bad, "st")
        assert bad.strip() == "" or bad not in str(e.value)


def test_no_answer_from_fyers_is_exit_1_and_nothing_is_written(api, env_file):
    code = api.new_auth_code()
    api.close()  # Fyers unreachable
    run = login(api, env_file, code)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "check the network" in run.stderr and "Traceback" not in run.stderr and code not in run.stderr
    assert_kept(env_file, None)
