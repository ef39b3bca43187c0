"""The charges of an executed NSE intraday order (core/costs.py) against figures worked by hand, with the
shipped config.yaml's dated rate table."""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from core.config import load_config
from core.costs import CHARGE_NAMES, Charges

ROOT = Path(__file__).resolve().parent.parent
TABLE = load_config(ROOT / "config.yaml").costs.table
D = Decimal


def test_a_one_lakh_buy_and_sell_costs_82_68_in_2025():
    day = date(2025, 6, 2)
    buy = TABLE.order(True, 1000, 100, day)
    sell = TABLE.order(False, 1000, 100, day)
    # Rs 1,00,000 each way. Brokerage min(20, 0.03% = 30) = 20 per order; exchange 0.00297% = 2.97 plus IPFT
    # Rs 10/crore = 0.10 -> 3.07 per order; SEBI Rs 10/crore = 0.10; GST 18% of (20 + 3.07 + 0.10) = 4.1706
    # -> 4.17; stamp duty 0.003% = 3.00 on the buy; STT 0.025% = 25.00 on the sell
    assert buy == Charges(D("20.00"), D(0), D("3.07"), D("0.10"), D("3.00"), D("4.17"))
    assert sell == Charges(D("20.00"), D("25.00"), D("3.07"), D("0.10"), D(0), D("4.17"))
    assert buy.total == D("30.34") and sell.total == D("52.34")
    assert (buy + sell).total == D("82.68")  # the reference's "about Rs 82.7"
    assert TABLE.round_trip(True, 1000, 1000, 100, day) == buy + sell


def test_a_2022_day_pays_2022_exchange_rates_and_a_2025_day_2025_rates():
    r22, r25 = TABLE.rates_for(date(2022, 3, 15)), TABLE.rates_for(date(2025, 3, 14))
    assert (r22.exchange_txn_pct, r22.ipft_per_crore) == (D("0.00345"), D("0.01"))
    assert (r25.exchange_txn_pct, r25.ipft_per_crore) == (D("0.00297"), D("10"))
    # Rs 10 lakh sold: 2022: 0.00345% = 34.50 (IPFT 0.001 rounds away); 2025: 29.70 + 1.00 IPFT
    assert TABLE.order(False, 2000, 500, date(2022, 3, 15)).exchange_txn == D("34.50")
    assert TABLE.order(False, 2000, 500, date(2025, 3, 14)).exchange_txn == D("30.70")
    # the day a period starts belongs to it; the day before to the one before
    assert TABLE.rates_for(date(2024, 10, 1)).exchange_txn_pct == D("0.00297")
    assert TABLE.rates_for(date(2024, 9, 30)).exchange_txn_pct == D("0.00325")


def test_brokerage_is_the_lower_of_rs_20_and_0_03_percent_per_order():
    day = date(2026, 11, 20)
    assert TABLE.order(True, 250, 4, day).brokerage == D("0.30")        # Rs 1,000: 0.03% = 0.30
    assert TABLE.order(True, 500, 100, day).brokerage == D("15.00")     # Rs 50,000: 15
    assert TABLE.order(True, 500, 10_000, day).brokerage == D("20.00")  # Rs 50 lakh: capped at 20
    assert TABLE.order(True, 500, 0, day) == Charges()


def test_each_charge_is_rounded_to_the_paisa_half_up_per_order():
    # Rs 29,700 sold in 2026: STT 7.425 -> 7.43; exchange 0.88209 + 0.0297 -> 0.91; SEBI 0.0297 -> 0.03;
    # GST on the rounded charges: 18% of (8.91 + 0.91 + 0.03) = 1.773 -> 1.77
    c = TABLE.order(False, 495, 60, date(2026, 11, 20))
    assert c == Charges(D("8.91"), D("7.43"), D("0.91"), D("0.03"), D(0), D("1.77"))
    assert all(getattr(c, n) == getattr(c, n).quantize(D("0.01")) for n in CHARGE_NAMES)


def test_a_day_before_the_table_is_an_error_not_a_guess():
    with pytest.raises(ValueError, match="no charge rates for 2019-12-31: costs.rates starts 2020-07-01"):
        TABLE.order(True, 100, 1, date(2019, 12, 31))


def test_an_option_order_pays_the_option_rates_on_its_premium():
    day = date(2026, 11, 23)
    # 1 lot of 75 bought at 100 (premium Rs 7,500) and sold at 120 (Rs 9,000). Brokerage flat Rs 20 per order;
    # exchange 0.03503% of premium: 2.627 -> 2.63 and 3.153 -> 3.15; SEBI Rs 10/crore: 0.0075 -> 0.01 and
    # 0.009 -> 0.01; stamp 0.003% on the buy: 0.225 -> 0.23; STT 0.1% on the sell: 9.00; GST 18% of
    # (20 + 2.63 + 0.01) = 4.0752 -> 4.08 and of (20 + 3.15 + 0.01) = 4.1688 -> 4.17
    assert TABLE.order(True, 100, 75, day, option=True) == Charges(D("20.00"), D(0), D("2.63"), D("0.01"),
                                                                    D("0.23"), D("4.08"))
    assert TABLE.order(False, 120, 75, day, option=True) == Charges(D("20.00"), D("9.00"), D("3.15"), D("0.01"),
                                                                     D(0), D("4.17"))
    # the equity rates would have charged 0.03% brokerage (2.25) and 0.025% STT: a different order
    assert TABLE.order(True, 100, 75, day) != TABLE.order(True, 100, 75, day, option=True)
    # dated: STT on an option sell was 0.0625% before 1 Oct 2024, 0.05% before 1 Apr 2023
    assert TABLE.rates_for(date(2024, 9, 30), option=True).stt_sell_pct == D("0.0625")
    assert TABLE.rates_for(date(2024, 10, 1), option=True).exchange_txn_pct == D("0.03503")
    assert TABLE.rates_for(date(2023, 3, 31), option=True).stt_sell_pct == D("0.05")
    with pytest.raises(ValueError, match="the option charge table starts 2020-07-01"):
        TABLE.rates_for(date(2020, 6, 30), option=True)


def test_the_ledger_charges_an_option_contract_from_the_option_rates():
    from options.contract import ContractName, is_option_symbol, parse_option_symbol

    assert parse_option_symbol("NIFTY23NOV2626000CE") == ContractName("NIFTY", "23NOV26", 26000.0, "CE")
    assert parse_option_symbol("BANKNIFTY30DEC2652500.5PE") == ContractName("BANKNIFTY", "30DEC26", 52500.5, "PE")
    assert not any(map(is_option_symbol, ("SBIN", "NIFTY", "NIFTY23NOV26FUT", "M&M", "NIFTY23XYZ2626000CE")))
