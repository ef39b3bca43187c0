"""OpenAlgo-compatible paper broker (analyzer/sandbox behaviour), run as its own process by paper_broker.py.

Modules: server (HTTP, routing, rate limits, faults), schemas (OpenAlgo's request validation), service
(endpoint semantics and response shapes), engine (orders, fills, positions, funds, clock), market (quotes,
replay clock), market_hours (IST square-off and session rules), session (the 03:00 IST session and the
00:00 settlement boundaries), settlement (T+1 holdings), gtt (GTT orders), store (SQLite persistence),
faults (fault injection), client (admin client), launcher (start it as a subprocess), instruments (the NSE
instrument master in nse_instruments.csv: symbols, tick sizes, refresh), instance (one broker per state file),
options (index options priced from the index quotes: expiry, optionsymbol, optionchain, optionsorder, optiongreeks).

Admin routes (POST JSON with "apikey", except health):
  /paper/v1/market  {"clock": epoch|null, "quotes": [[symbol, exchange, ts, ltp, bid, ask, high, low, open,
                     prev_close, volume], ...]}  -- a clock switches the broker to replay mode
  /paper/v1/clock   {"clock": epoch}           -- advance the replay clock alone (never moves back)
  /paper/v1/reset   {"clock_mode": "wall"|"replay", "clock": epoch|null, "funds": rupees|null}
  /paper/v1/faults  {fault fields of paper.faults.FaultConfig}  -- replaces the set; none clears it
  /paper/v1/health  (GET or POST, no key)
"""
