"""Recognising an option contract by its OpenAlgo symbol: base, expiry DDMMMYY, strike, CE/PE (NIFTY23NOV2626000CE).

The books hold the contract under that symbol, so the ledger charges its orders from the option rates and the
options executor finds which trade belongs to which index by the symbol alone.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

OPTION_SYMBOL_RE = re.compile(r"^([A-Z][A-Z&-]*?)(\d{2}(?:JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)\d{2})"
                              r"(\d+(?:\.\d+)?)(CE|PE)$")


@dataclass(frozen=True)
class ContractName:
    underlying: str
    expiry_code: str    # DDMMMYY
    strike: float
    option_type: str    # CE or PE

    @property
    def expiry(self) -> date:
        return datetime.strptime(self.expiry_code, "%d%b%y").date()


def parse_option_symbol(symbol: str) -> ContractName | None:
    """The parts of an option contract's symbol; None for anything else (a share, an index, a future)."""
    m = OPTION_SYMBOL_RE.match(symbol)
    if m is None or not _valid_day(m.group(2)):
        return None
    return ContractName(m.group(1), m.group(2), float(m.group(3)), m.group(4))


def is_option_symbol(symbol: str) -> bool:
    return OPTION_SYMBOL_RE.match(symbol) is not None


def _valid_day(code: str) -> bool:
    try:
        datetime.strptime(code, "%d%b%y")
    except ValueError:
        return False
    return True
