"""The options executor's contract resolution against a real paper broker: expiries from /expiry, the chain of the
chosen expiry, the freeze quantity from /optionsymbol, and the plan the TradeManager orders (or records)."""
from __future__ import annotations

from datetime import date
from datetime import time as dtime

from core.enums import PositionSide
from options.executor import ContractResolver, OptionsExecutor, strike_count, wants_greeks
from options.plan import NoTrade, OptionOrderPlan
from options.spec import ExpiryChoice, Filters, OptionsSpec, PremiumLevel, Scoring
from pipeline.messages import CapTriggers, ForceExit, Outcome, Watch
from tests.paper_fixtures import DAY, T, broker, broker_proc  # noqa: F401 - fixtures

SPOT = 26012.35


def push_index(broker, ts: float, ltp: float = SPOT) -> None:
    broker.admin().push_market([["NIFTY", "NSE_INDEX", ts, ltp, 0, 0, ltp + 80, ltp - 80, ltp, ltp - 20, 0]],
                               clock=ts)


def test_a_long_view_buys_the_atm_call_and_a_short_view_the_atm_put_in_whole_lots(broker):
    push_index(broker, T(10))
    r = ContractResolver(broker.gateway())
    spec = OptionsSpec(lots=2, stop=PremiumLevel(30, True), target=PremiumLevel(50, True))
    ce = r.plan("NIFTY", spec, PositionSide.LONG, T(10), risk=10_000, funds=1_000_000)
    pe = r.plan("NIFTY", spec, PositionSide.SHORT, T(10), risk=10_000, funds=1_000_000)
    assert isinstance(ce, OptionOrderPlan) and isinstance(pe, OptionOrderPlan)
    assert ce.symbol == "NIFTY23NOV2626000CE" and pe.symbol == "NIFTY23NOV2626000PE"  # nearest weekly, ATM
    assert (ce.exchange, ce.lots, ce.quantity % ce.lots) == ("NFO", 2, 0)
    lot = ce.quantity // 2
    quoted = broker.post("optionsymbol", {"underlying": "NIFTY", "exchange": "NSE_INDEX", "expiry_date": "23NOV26",
                                          "offset": "ATM", "option_type": "CE"}).json()
    assert lot == quoted["lotsize"] and ce.children == (ce.quantity,)
    assert ce.stop is not None and ce.target is not None and ce.stop < ce.premium < ce.target
    assert "expiry 2026-11-23" in ce.why and "ATM CE" in ce.why


def test_the_expiry_day_roll_and_a_missing_contract_say_why(broker):
    monday = date(2026, 11, 23)
    push_index(broker, T(14, 0, day=monday))
    r = ContractResolver(broker.gateway())
    spec = OptionsSpec(roll_after=dtime(13, 0))
    before = r.plan("NIFTY", spec, PositionSide.LONG, T(12, 59, day=monday), 10_000, None)
    after = r.plan("NIFTY", spec, PositionSide.LONG, T(13, 0, day=monday), 10_000, None)
    assert isinstance(before, OptionOrderPlan) and before.expiry.expiry == monday and not before.expiry.rolled
    assert isinstance(after, OptionOrderPlan) and after.expiry.rolled and after.expiry.expiry > monday
    assert "roll_after 13:00" in after.why
    thin = r.plan("NIFTY", OptionsSpec(filters=Filters(min_oi=1)), PositionSide.LONG, T(14, 0, day=monday), 10_000,
                  None)
    assert isinstance(thin, NoTrade) and "oi 0 below min_oi 1" in thin.reason
    unknown = r.plan("NOSUCH", OptionsSpec(), PositionSide.LONG, T(14, 0, day=monday), 10_000, None)
    assert isinstance(unknown, NoTrade) and "list is empty" in unknown.reason


def test_a_large_order_is_split_at_the_freeze_quantity(broker):
    push_index(broker, T(10))
    r = ContractResolver(broker.gateway())
    freeze = broker.post("optionsymbol", {"underlying": "NIFTY", "exchange": "NSE_INDEX", "expiry_date": "23NOV26",
                                          "offset": "OTM10", "option_type": "CE"}).json()
    lot, fq = freeze["lotsize"], freeze["freeze_qty"]
    lots = fq // lot + 3
    plan = r.plan("NIFTY", OptionsSpec(offset="OTM10", lots=lots), PositionSide.LONG, T(10), 10_000, None)
    assert isinstance(plan, OptionOrderPlan) and plan.quantity == lots * lot
    largest = fq // lot * lot
    assert plan.children == (largest, lots * lot - largest) and all(c % lot == 0 for c in plan.children)


def test_the_chain_asked_for_covers_the_spec():
    assert strike_count(OptionsSpec()) == 1 and strike_count(OptionsSpec(offset="OTM7")) == 7
    assert strike_count(OptionsSpec(offset=None, scoring=Scoring())) == Scoring().max_strikes_from_atm
    assert wants_greeks(OptionsSpec(offset=None, scoring=Scoring())) and not wants_greeks(OptionsSpec())
    assert OptionsSpec().expiry is ExpiryChoice.NEAREST_WEEKLY


def test_feedback_about_a_contract_reaches_its_indexs_worker_and_its_caps_do_not():
    sent: list[tuple[str, object]] = []
    ex = OptionsExecutor({"NIFTY": OptionsSpec()}, None)
    go = ex.route(lambda sym, msg: sent.append((sym, msg)))
    go("NIFTY23NOV2626000CE", ForceExit("NIFTY23NOV2626000CE", "square_off"))
    go("NIFTY23NOV2626000CE", Watch("NIFTY23NOV2626000CE", True))
    go("NIFTY23NOV2626000CE", CapTriggers("NIFTY23NOV2626000CE", None))
    go("BANKNIFTY30DEC2652500CE", Watch("BANKNIFTY30DEC2652500CE", True))  # not a configured index: as is
    out = Outcome("s1", "NIFTY", "ENTRY", "EXECUTED")
    go("NIFTY", out)
    assert sent == [("NIFTY", ForceExit("NIFTY", "square_off")),
                    ("BANKNIFTY30DEC2652500CE", Watch("BANKNIFTY30DEC2652500CE", True)), ("NIFTY", out)]
    assert ex.underlying("NIFTY23NOV2626000PE") == "NIFTY" and ex.underlying("SBIN") is None


def test_with_no_index_configured_all_feedback_reaches_the_worker_as_sent():
    sent: list[tuple[str, object]] = []
    ex = OptionsExecutor({}, None)
    go = ex.route(lambda sym, msg: sent.append((sym, msg)))
    msgs = [("NIFTY23NOV2626000CE", ForceExit("NIFTY23NOV2626000CE", "square_off")),
            ("NIFTY23NOV2626000CE", Watch("NIFTY23NOV2626000CE", True)),
            ("NIFTY23NOV2626000CE", CapTriggers("NIFTY23NOV2626000CE", None)),
            ("SBIN", Outcome("s1", "SBIN", "ENTRY", "FAILED"))]
    for sym, msg in msgs:
        go(sym, msg)
    assert sent == msgs and ex.underlying("NIFTY23NOV2626000CE") is None
    assert DAY.year == 2026
