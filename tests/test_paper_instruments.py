"""The paper broker's instrument master: a fresh broker with no daemon serves the official client; symbols,
MARKET-without-quote and tick sizes are refused as a real server refuses them; the file loads strictly and
refreshes from an OpenAlgo server's symbol search."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from openalgo import api

from paper import instruments as I
from tests.conftest import ROOT, free_port
from tests.paper_fixtures import ORDER, T, broker, broker_proc, launch, q, status  # noqa: F401 - fixtures

MARKET_NO_QUOTE = ("Cannot place MARKET order for {} - unable to fetch current price. Please try again later or "
                   "use LIMIT order with a specific price.")


def place(b, **over):
    return b.post("placeorder", {**ORDER, **over})


def refused(answer: dict) -> tuple[int, dict]:
    """The official client (1.0.12) turns a non-200 answer into {"status":"error","message":"HTTP <code>: <body>"}."""
    assert answer["status"] == "error", answer
    head, _, body = answer["message"].partition(": ")
    return int(head.removeprefix("HTTP ")), json.loads(body)


# ---------------------------------------------------------------- the shipped file

def test_shipped_master_covers_the_config_and_is_well_formed():
    import yaml
    m = I.load()
    assert len(m) > 2000
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    names = [s if isinstance(s, str) else s["symbol"] for s in cfg["symbols"]]
    assert [s for s in names if m.get(s, "NSE") is None] == []
    sbin = m.get("SBIN", "NSE")
    assert (sbin.name, sbin.series, sbin.lot_size, sbin.tick_size, sbin.isin) == (
        "STATE BANK OF INDIA", "EQ", 1, 0.05, "INE062A01020")
    assert m.get("SBIN", "BSE") is None
    assert any(line.startswith("# Source: ") for line in m.header)
    assert any("As of:" in line for line in m.header)


@pytest.mark.parametrize("price, tick, ok", [
    (500.05, 0.05, True), (500.03, 0.05, False), (1400.1, 0.1, True), (1400.05, 0.1, False), (0.3, 0.1, True),
    (12345.0, 1.0, True), (12345.5, 1.0, False), (19.99, 0.01, True), (805.35, 0.05, True)])
def test_on_tick(price, tick, ok):
    assert I.on_tick(price, tick) is ok


@pytest.mark.parametrize("line, says", [
    ("SBIN,STATE BANK,EQ,1,0.00,INE062A01020", "tick_size '0.00' for SBIN must be a positive number"),
    ("SBIN,STATE BANK,EQ,1,abc,INE062A01020", "tick_size 'abc' for SBIN"),
    ("SBIN,STATE BANK,EQ,0,0.05,INE062A01020", "lot_size '0' for SBIN must be a whole number >= 1"),
    ("SBIN,STATE BANK,EQ,1,0.05", "5 fields, expected 6"),
    ("SB IN,STATE BANK,EQ,1,0.05,", "symbol 'SB IN' must be non-empty without spaces"),
])
def test_bad_line_names_file_line_and_value(tmp_path, line, says):
    f = tmp_path / "m.csv"
    f.write_text("# comment\n" + ",".join(I.COLUMNS) + "\nINFY,INFOSYS,EQ,1,0.1,\n" + line + "\n")
    with pytest.raises(I.InstrumentFileError) as e:
        I.load(f)
    assert str(e.value).startswith(f"{f}:4: ") and says in str(e.value)


def test_broker_with_a_bad_instrument_file_exits_2_in_one_line(tmp_path):
    f = tmp_path / "m.csv"
    f.write_text("symbol,name\nSBIN,x\n")
    r = subprocess.run([sys.executable, str(ROOT / "paper_broker.py"), "--port", str(free_port()),
                        "--state-file", str(tmp_path / "s.sqlite"), "--instruments", str(f)],
                       capture_output=True, text=True, timeout=60, env={**os.environ, "APP_KEY": "k"})
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert str(f) in r.stderr and "symbol,name,series,lot_size,tick_size,isin" in r.stderr


# ---------------------------------------------------------------- a fresh broker, no daemon, the official client

@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A broker as the README starts it: wall clock, nothing pushed, nothing reset."""
    b = launch(tmp_path_factory.mktemp("fresh"), name="fresh")
    yield b
    b.stop()


def test_official_client_on_a_fresh_broker_without_a_daemon(fresh):
    # CNC: MIS is refused after 15:15 IST on the wall clock, and this test must pass at any hour
    client = api(api_key=fresh.key, host=fresh.url)
    assert fresh.admin().health()["symbols"] == 0          # no quote was ever pushed
    r = client.placeorder(strategy="t", symbol="SBIN", action="BUY", exchange="NSE", price_type="LIMIT",
                          product="CNC", quantity=1, price="500")
    assert r["status"] == "success", r
    oid = r["orderid"]
    st = client.orderstatus(order_id=oid, strategy="t")
    assert st["status"] == "success" and st["data"]["order_status"] == "open"
    assert (st["data"]["symbol"], st["data"]["price"], st["data"]["price_type"]) == ("SBIN", 500, "LIMIT")
    book = client.orderbook()
    assert book["status"] == "success" and [o["orderid"] for o in book["data"]["orders"]] == [oid]
    sl = client.placeorder(strategy="t", symbol="RELIANCE", action="BUY", exchange="NSE", price_type="SL",
                           product="CNC", quantity=1, price="1500.1", trigger_price="1500")
    assert sl["status"] == "success", sl
    assert client.orderstatus(order_id=sl["orderid"], strategy="t")["data"]["order_status"] == "trigger pending"

    c = client.cancelorder(order_id=oid, strategy="t")
    assert c["status"] == "success" and c["orderid"] == oid
    assert client.orderstatus(order_id=oid, strategy="t")["data"]["order_status"] == "cancelled"
    assert client.tradebook() == {"status": "success", "data": [], "mode": "analyze"}
    pb = client.positionbook()
    assert (pb["status"], pb["data"], pb["total_pnl"]) == ("success", [], 0.0)
    assert client.funds()["status"] == "success"
    assert refused(client.quotes(symbol="SBIN", exchange="NSE")) == (
        500, {"status": "error", "message": "Failed to fetch quotes"})  # listed, no price: OpenAlgo's answer

    m = client.placeorder(strategy="t", symbol="SBIN", action="BUY", exchange="NSE", price_type="MARKET",
                          product="CNC", quantity=1)
    assert refused(m) == (400, {"status": "error", "message": MARKET_NO_QUOTE.format("SBIN"), "mode": "analyze"})
    u = client.placeorder(strategy="t", symbol="NOSUCHSYM", action="BUY", exchange="NSE", price_type="LIMIT",
                          product="CNC", quantity=1, price="10")
    assert refused(u) == (400, {"status": "error", "message": "Symbol NOSUCHSYM not found on NSE", "mode": "analyze"})
    code, body = refused(client.placeorder(strategy="t", symbol="SBIN", action="BUY", exchange="NSE",
                                           price_type="LIMIT", product="CNC", quantity=1, price="500.03"))
    assert code == 400 and body["message"].startswith("The order price is not multiple of the tick size.")
    assert "ticks of 0.05" in body["message"] and "500.03" in body["message"]
    assert len(client.orderbook()["data"]["orders"]) == 2     # refusals leave no order behind


def test_refusals_are_http_400(fresh):
    r = fresh.post("placeorder", {**ORDER, "product": "CNC"})
    assert r.status_code == 400 and r.json()["message"] == MARKET_NO_QUOTE.format("SBIN")
    r = fresh.post("placeorder", {**ORDER, "symbol": "NOSUCHSYM", "pricetype": "LIMIT", "price": "10"})
    assert r.status_code == 400
    r = fresh.post("placeorder", {**ORDER, "product": "CNC", "pricetype": "LIMIT", "price": "500.01"})
    assert r.status_code == 400 and "tick size" in r.json()["message"]


# ---------------------------------------------------------------- tick sizes per symbol (replay clock, MIS)

def test_tick_size_is_the_symbols_own(broker):
    # RELIANCE trades in 0.10 ticks, TATASTEEL in 0.01, SBIN in 0.05 (the shipped file)
    assert place(broker, symbol="TATASTEEL", pricetype="LIMIT", price="150.01").status_code == 200
    r = place(broker, symbol="RELIANCE", pricetype="LIMIT", price="1400.05")
    assert r.status_code == 400 and "RELIANCE on NSE trades in ticks of 0.1" in r.json()["message"]
    lim = place(broker, symbol="RELIANCE", pricetype="LIMIT", price="1400.1")
    assert lim.status_code == 200, lim.text
    assert status(broker, lim.json()["orderid"])["order_status"] == "open"   # rests: no quote yet
    r = place(broker, symbol="RELIANCE", action="SELL", pricetype="SL-M", trigger_price="1390.05")
    assert r.status_code == 400 and r.json()["message"].startswith("The order trigger price is not multiple")
    r = broker.post("modifyorder", {"strategy": "t", "exchange": "NSE", "symbol": "RELIANCE",
                                    "orderid": lim.json()["orderid"], "action": "BUY", "product": "MIS",
                                    "pricetype": "LIMIT", "price": "1400.15", "quantity": "10",
                                    "disclosed_quantity": "0", "trigger_price": "0"})
    assert r.status_code == 400 and "tick size" in r.json()["message"]
    assert status(broker, lim.json()["orderid"])["price"] == 1400.1


def test_a_resting_master_symbol_fills_when_its_quotes_arrive(broker):
    lim = place(broker, symbol="INFY", pricetype="LIMIT", price="1500").json()["orderid"]
    broker.admin().push_market([q("INFY", T(10, 1), 1499.9)], clock=T(10, 2))
    s = status(broker, lim)
    assert (s["order_status"], s["average_price"]) == ("complete", 1500)


def test_pushed_symbols_outside_the_master_stay_tradable_without_a_tick_check(broker):
    # synthetic and replayed test symbols (SYM000...) are not NSE's; the daemon's quotes make them known
    assert place(broker, symbol="SYM001").status_code == 400
    broker.admin().push_market([q("SYM001", T(10), 100.0)], clock=T(10))
    assert place(broker, symbol="SYM001").status_code == 200
    assert place(broker, symbol="SYM001", pricetype="LIMIT", price="99.987").status_code == 200


def test_search_and_symbol_answer_from_the_master(broker):
    r = broker.post("search", {"query": "sbin", "exchange": "NSE"}).json()
    assert r["status"] == "success" and r["data"][0]["symbol"] == "SBIN"
    assert (r["data"][0]["tick_size"], r["data"][0]["lotsize"], r["data"][0]["brsymbol"]) == (0.05, 1, "NSE:SBIN-EQ")
    assert broker.post("search", {"query": "ZZZNOPE"}).json() == {"status": "success", "data": [],
                                                                  "message": "No matching symbols found"}
    r = broker.post("search", {"query": "  "})
    assert r.status_code == 400 and r.json()["message"] == "Query parameter is required and cannot be empty"
    assert broker.post("search", {"apikey": "bad", "query": "SBIN"}, key=False).status_code == 403
    d = broker.post("symbol", {"symbol": "RELIANCE", "exchange": "NSE"}).json()
    assert d["status"] == "success" and d["data"]["tick_size"] == 0.1
    r = broker.post("symbol", {"symbol": "NOPE", "exchange": "NSE"})
    assert r.status_code == 404 and r.json()["message"] == "Symbol NOPE not found in exchange NSE"


# ---------------------------------------------------------------- refresh from an OpenAlgo server

class _Search(BaseHTTPRequestHandler):
    """OpenAlgo's /api/v1/search as a real server answers it: key checked, exact and partial matches."""

    rows: dict = {}
    key = "k"
    fail_on: str | None = None
    seen: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append(body)
        if self.path != "/api/v1/search":
            code, out = 404, {"status": "error", "message": "not found"}
        elif body.get("apikey") != self.key:
            code, out = 403, {"status": "error", "message": "Invalid openalgo apikey"}
        elif body["query"] == self.fail_on:
            code, out = 500, {"status": "error", "message": "An error occurred while searching symbols"}
        else:
            data = [r for s, r in self.rows.items() if body["query"].upper() in s]
            code, out = 200, {"status": "success", "message": f"Found {len(data)} matching symbols", "data": data}
        raw = json.dumps(out).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *a):
        pass


def _row(sym, tick, lot=1, name=None):
    return {"symbol": sym, "brsymbol": f"NSE:{sym}-EQ", "name": name or sym, "exchange": "NSE", "brexchange": "NSE",
            "token": "1", "expiry": "", "strike": -1.0, "lotsize": lot, "instrumenttype": "EQ", "tick_size": tick}


@pytest.fixture
def search_server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Search)
    _Search.seen, _Search.fail_on = [], None
    _Search.rows = {"SBIN": _row("SBIN", 0.1, name="STATE BANK OF INDIA"), "SBINNEW": _row("SBINNEW", 0.01),
                    "INFY": _row("INFY", 0.1, name="INFOSYS LIMITED")}
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _refresh(file, url, *extra, key="k"):
    env = {**os.environ, "APP_KEY": key, "HOST_SERVER": url}
    return subprocess.run([sys.executable, "-m", "paper.instruments", "refresh", "--file", str(file), "--rate", "1000",
                           *extra], cwd=str(ROOT), capture_output=True, text=True, timeout=60, env=env)


def _small_master(tmp_path):
    f = tmp_path / "m.csv"
    f.write_text("# Source: a test file\n" + ",".join(I.COLUMNS) + "\n"
                 "SBIN,STATE BANK OF INDIA,EQ,1,0.05,INE062A01020\nINFY,INFOSYS LIMITED,EQ,1,0.05,INE009A01021\n"
                 "GONE,DELISTED LTD,EQ,1,0.05,\n")
    return f


def test_refresh_rewrites_tick_sizes_from_the_servers_search(tmp_path, search_server):
    f = _small_master(tmp_path)
    r = _refresh(f, search_server)
    assert r.returncode == 0, r.stderr
    assert "not known to the server, dropped: GONE" in r.stdout
    m = I.load(f)
    assert sorted(m.by_symbol) == ["INFY", "SBIN"]                  # SBINNEW matched "SBIN" but is not SBIN
    assert (m.get("SBIN", "NSE").tick_size, m.get("INFY", "NSE").tick_size) == (0.1, 0.1)
    assert m.get("SBIN", "NSE").isin == "INE062A01020"             # kept: search has no ISIN
    src = next(line for line in m.header if line.startswith("# Source: "))
    assert f"OpenAlgo /api/v1/search at {search_server}" in src and "a test file" in src
    assert {b["query"] for b in _Search.seen} == {"SBIN", "INFY", "GONE"}
    assert all(b["exchange"] == "NSE" for b in _Search.seen)


def test_refresh_of_a_list_keeps_the_other_symbols(tmp_path, search_server):
    f = _small_master(tmp_path)
    r = _refresh(f, search_server, "--symbols", "SBIN")
    assert r.returncode == 0, r.stderr
    m = I.load(f)
    assert sorted(m.by_symbol) == ["GONE", "INFY", "SBIN"] and m.get("SBIN", "NSE").tick_size == 0.1
    assert m.get("INFY", "NSE").tick_size == 0.05


def test_refresh_failure_writes_nothing(tmp_path, search_server):
    f = _small_master(tmp_path)
    before = f.read_text()
    _Search.fail_on = "INFY"
    r = _refresh(f, search_server)
    assert r.returncode == 1 and "refresh failed" in r.stderr and "HTTP 500" in r.stderr
    assert "Traceback" not in r.stderr
    r = _refresh(f, search_server, key="wrong")
    assert r.returncode == 1 and "HTTP 403" in r.stderr and "wrong" not in r.stderr
    assert f.read_text() == before


def test_refresh_against_the_paper_broker(tmp_path, broker):
    """The paper broker answers search too: a file with a wrong tick size is put right from it."""
    f = tmp_path / "m.csv"
    f.write_text(",".join(I.COLUMNS) + "\nSBIN,STATE BANK OF INDIA,EQ,1,0.01,INE062A01020\n")
    r = _refresh(f, broker.url, key=broker.key)
    assert r.returncode == 0, r.stderr
    assert I.load(f).get("SBIN", "NSE").tick_size == 0.05
