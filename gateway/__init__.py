"""Everything the daemon sends to OpenAlgo goes through here: OpenAlgoGateway (gateway.openalgo), typed
results (gateway.results), symbol mapping (gateway.symbols) and client-side rate limits (gateway.ratelimit)."""
