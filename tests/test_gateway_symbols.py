"""OpenAlgo <-> Fyers symbol mapping."""
from __future__ import annotations

import pytest

from core.config import load_config
from gateway.symbols import SymbolMap, UnknownSymbol, to_fyers, to_openalgo


def test_cash_equity_rule_both_ways():
    assert to_fyers("SBIN") == "NSE:SBIN-EQ"
    assert to_fyers("RELIANCE", "BSE") == "BSE:RELIANCE-EQ"
    assert to_openalgo("NSE:SBIN-EQ") == ("SBIN", "NSE")
    assert to_openalgo("NSE:BAJAJ-AUTO-EQ") == ("BAJAJ-AUTO", "NSE")
    assert to_openalgo("NSE:M&M-EQ") == ("M&M", "NSE")
    assert to_openalgo("NSE:IDEA-BE") == ("IDEA", "NSE")
    for bad in ("SBIN", "NSE:NIFTY50-INDEX", "NFO:NIFTY25AUGFUT", "NSE:SBIN", ""):
        with pytest.raises(ValueError):
            to_openalgo(bad)
    with pytest.raises(ValueError):
        to_fyers("NIFTY", "NSE_INDEX")
    with pytest.raises(ValueError):
        to_fyers("NSE:SBIN-EQ")


def test_symbol_map_explicit_and_derived():
    m = SymbolMap([("SBIN", "NSE", None), ("NIFTY", "NSE_INDEX", "NSE:NIFTY50-INDEX")])
    assert m.to_fyers("SBIN") == "NSE:SBIN-EQ"
    assert m.to_openalgo("NSE:NIFTY50-INDEX") == ("NIFTY", "NSE_INDEX")
    assert m.exchange("NIFTY") == "NSE_INDEX" and "SBIN" in m and len(m) == 2
    assert sorted(m.fyers_tickers()) == ["NSE:NIFTY50-INDEX", "NSE:SBIN-EQ"]
    with pytest.raises(UnknownSymbol, match="INFY"):
        m.to_fyers("INFY")
    with pytest.raises(KeyError):
        m.to_openalgo("NSE:INFY-EQ")


def test_symbol_map_refuses_ambiguity():
    with pytest.raises(ValueError, match="twice"):
        SymbolMap([("SBIN", "NSE", None), ("SBIN", "NSE", None)])
    with pytest.raises(ValueError, match="both"):
        SymbolMap([("SBIN", "NSE", None), ("SBI", "NSE", "NSE:SBIN-EQ")])


def test_symbol_map_from_project_config():
    cfg = load_config()
    m = SymbolMap.from_config(cfg)
    assert len(m) == len(cfg.symbols)
    for s in cfg.symbols:
        assert m.to_openalgo(m.to_fyers(s.symbol)) == (s.symbol, cfg.exchange)
