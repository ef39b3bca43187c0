"""Index signals traded as options (issue 18), daemon side: which contract and how many, as pure functions.

Modules: spec (the `options:` block of a symbol in config.yaml, validated), chain (OpenAlgo's /optionchain
response as typed rows), expiry (which listed expiry to trade, and the roll on expiry day), strikes (which strike:
an offset ATM / ITMn / OTMn, or a score over the seed's criteria behind liquidity filters), sizing (whole lots,
premium-risk lots, splits at the freeze quantity), exits (stop and target on the premium), plan (one order from
those choices with the line saying why, or NoTrade: what signals_only and paper modes record). Nothing here
calls the broker or reads the clock: the caller passes the broker's answers and the time, so every choice can
be tested against a chain written by hand.
"""
