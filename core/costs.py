"""What an executed NSE intraday (MIS) equity order, or an index option order, costs: brokerage and the statutory
charges, at the rates in force on the trading day.

Pure arithmetic, no I/O: the RiskManager sizes with it and the TradeManager charges fills with it. Rates come
from the dated table in config.yaml (`costs.rates`), so a replay of an old day is charged that day's rates.
Each charge of an order is rounded to the paisa (half up), GST on the rounded charges it applies to, as a
contract note shows them per order.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

PAISA = Decimal("0.01")
ZERO = Decimal(0)
HUNDRED = Decimal(100)
CRORE = Decimal(10_000_000)

# the breakdown stored with a trade and written to trades.csv, in that order; costs = their sum
CHARGE_NAMES = ("brokerage", "stt", "exchange_txn", "sebi", "stamp_duty", "gst")
# the keys of one period in config.yaml, besides `from`
RATE_KEYS = ("brokerage_pct", "brokerage_max", "stt_sell_pct", "exchange_txn_pct", "ipft_per_crore",
             "sebi_per_crore", "stamp_duty_buy_pct", "gst_pct")


def _paisa(x: Decimal) -> Decimal:
    return x.quantize(PAISA, rounding=ROUND_HALF_UP)


def _dec(x: Any) -> Decimal:
    return x if isinstance(x, Decimal) else Decimal(str(x))


@dataclass(frozen=True)
class ChargeRates:
    """The rates in force from `start` until the next period; percentages are of the order's turnover."""

    start: date
    brokerage_pct: Decimal       # brokerage is the lower of this share of turnover ...
    brokerage_max: Decimal       # ... and this many rupees, per executed order
    stt_sell_pct: Decimal        # securities transaction tax, sell side
    exchange_txn_pct: Decimal    # NSE transaction charge, both sides
    ipft_per_crore: Decimal      # NSE investor protection fund, both sides (shown within exchange_txn)
    sebi_per_crore: Decimal      # SEBI turnover fee, both sides
    stamp_duty_buy_pct: Decimal  # stamp duty, buy side
    gst_pct: Decimal             # GST on brokerage + exchange charges + SEBI fee


@dataclass(frozen=True)
class Charges:
    """One order's charges (or a sum or difference of them), in rupees."""

    brokerage: Decimal = ZERO
    stt: Decimal = ZERO
    exchange_txn: Decimal = ZERO
    sebi: Decimal = ZERO
    stamp_duty: Decimal = ZERO
    gst: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return sum((getattr(self, n) for n in CHARGE_NAMES), ZERO)

    def as_dict(self) -> dict[str, Decimal]:
        return {n: getattr(self, n) for n in CHARGE_NAMES}

    def __add__(self, other: Charges) -> Charges:
        return Charges(*(getattr(self, n) + getattr(other, n) for n in CHARGE_NAMES))

    def __sub__(self, other: Charges) -> Charges:
        return Charges(*(getattr(self, n) - getattr(other, n) for n in CHARGE_NAMES))

    @classmethod
    def of(cls, row: Any) -> Charges:
        """The breakdown stored on a database row (or any object with the six attributes)."""
        return cls(*(_dec(getattr(row, n) or 0) for n in CHARGE_NAMES))


NO_CHARGES = Charges()


class CostTable:
    """The dated rate table; `order` prices one executed order, `round_trip` a planned trade. Option orders are
    priced from `option_periods` (their rates are on the premium: STT on the sell, exchange charge both sides)."""

    def __init__(self, periods: Sequence[ChargeRates], option_periods: Sequence[ChargeRates] | None = None):
        if not periods:
            raise ValueError("the cost table needs at least one period")
        self.periods = tuple(sorted(periods, key=lambda p: p.start))
        self.option_periods = tuple(sorted(OPTION_RATES if option_periods is None else option_periods,
                                           key=lambda p: p.start))

    @property
    def first_day(self) -> date:
        return self.periods[0].start

    def covers(self, day: date) -> bool:
        return day >= self.first_day

    def rates_for(self, day: date, option: bool = False) -> ChargeRates:
        """The last period starting on or before `day`; a day before the table is an error, never a guess."""
        found = None
        for p in self.option_periods if option else self.periods:
            if p.start <= day:
                found = p
            else:
                break
        if found is None:
            table = "the option charge table" if option else "costs.rates"
            first = (self.option_periods if option else self.periods)[0].start
            raise ValueError(f"no charge rates for {day.isoformat()}: {table} starts {first.isoformat()}")
        return found

    def order(self, is_buy: bool, price: Any, quantity: int, day: date, option: bool = False) -> Charges:
        """The charges of one executed order of `quantity` at average `price` on `day` (`option`: an option
        contract, `price` its premium)."""
        if quantity <= 0:
            return NO_CHARGES
        r = self.rates_for(day, option)
        turnover = _dec(price) * quantity
        brokerage = _paisa(min(turnover * r.brokerage_pct / HUNDRED, r.brokerage_max))
        stt = ZERO if is_buy else _paisa(turnover * r.stt_sell_pct / HUNDRED)
        exchange = _paisa(turnover * r.exchange_txn_pct / HUNDRED + turnover * r.ipft_per_crore / CRORE)
        sebi = _paisa(turnover * r.sebi_per_crore / CRORE)
        stamp = _paisa(turnover * r.stamp_duty_buy_pct / HUNDRED) if is_buy else ZERO
        gst = _paisa((brokerage + exchange + sebi) * r.gst_pct / HUNDRED)
        return Charges(brokerage, stt, exchange, sebi, stamp, gst)

    def round_trip(self, long: bool, entry_price: Any, exit_price: Any, quantity: int, day: date) -> Charges:
        """A planned trade's entry and exit orders, each filled whole in one order."""
        return self.order(long, entry_price, quantity, day) + self.order(not long, exit_price, quantity, day)


def rates_from_mapping(start: date, values: dict[str, Any]) -> ChargeRates:
    """A period from validated config values (numbers keyed by RATE_KEYS)."""
    return ChargeRates(start, *(_dec(values[k]) for k in RATE_KEYS))


def _periods(*changes: tuple[str, dict[str, Any]]) -> tuple[ChargeRates, ...]:
    out: list[ChargeRates] = []
    current: dict[str, Any] = {}
    for start, values in changes:
        current = {**current, **values}
        out.append(rates_from_mapping(date.fromisoformat(start), current))
    return tuple(out)


# used when config.yaml has no costs.rates; the same table, with its sources, is in the shipped config.yaml
DEFAULT_RATES = _periods(
    ("2020-07-01", {"brokerage_pct": "0.03", "brokerage_max": "20", "stt_sell_pct": "0.025",
                    "exchange_txn_pct": "0.00325", "ipft_per_crore": "0.01", "sebi_per_crore": "5",
                    "stamp_duty_buy_pct": "0.003", "gst_pct": "18"}),
    ("2021-01-01", {"exchange_txn_pct": "0.00345"}),
    ("2021-04-01", {"sebi_per_crore": "10"}),
    ("2023-04-01", {"exchange_txn_pct": "0.00325", "ipft_per_crore": "10"}),
    ("2024-10-01", {"exchange_txn_pct": "0.00297"}),
)


# Index options, bought and sold intraday: the same charges on the premium turnover. Brokerage is a flat Rs 20 per
# executed order (brokerage_pct 100 caps it at the turnover of a tiny order). STT on the sell side: 0.05% until
# March 2023, 0.0625% from 1 Apr 2023 (Finance Act 2023), 0.1% from 1 Oct 2024 (Union Budget 2024). NSE's
# transaction charge on premium: 0.053% until 30 Sep 2024, 0.03503% from 1 Oct 2024 (the earlier rate is as
# brokers published it; verify before charging an old day). IPFT on options is folded into the exchange charge.
OPTION_RATES = _periods(
    ("2020-07-01", {"brokerage_pct": "100", "brokerage_max": "20", "stt_sell_pct": "0.05",
                    "exchange_txn_pct": "0.053", "ipft_per_crore": "0", "sebi_per_crore": "5",
                    "stamp_duty_buy_pct": "0.003", "gst_pct": "18"}),
    ("2021-04-01", {"sebi_per_crore": "10"}),
    ("2023-04-01", {"stt_sell_pct": "0.0625"}),
    ("2024-10-01", {"stt_sell_pct": "0.1", "exchange_txn_pct": "0.03503"}),
)
