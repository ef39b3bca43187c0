"""Index options on the paper broker: OpenAlgo's expiry, optionsymbol, optionchain, optionsorder and optiongreeks.

Modules: contracts (the shipped tables underlyings.csv and expiries.csv, symbols, strike grid and offsets),
pricing (Black-Scholes / Black-76 prices, greeks, implied volatility, the volatility smile), desk (option quotes
from the index quotes the broker receives; lot, freeze and full-premium rules for the engine), api (the
endpoints' schemas, shapes and errors).
"""
