"""`kind: rules`: a strategy written in config.yaml as named indicators and rules (strategies/rules_spec.py for
the params, strategies/rules_expr.py for the condition language).

Rules, on top of strategies/candle_strategy.py (the day, one position at a time, acting on the next tick,
entry_cutoff and exit_at, state for a restart), at each in-session candle close:
- Every indicator is updated, then every rule's entry condition is evaluated. A rule wants an entry when its
  condition becomes true: true on this candle and false on the previous one (unknown there, while an
  indicator warms up, is not false: the first candle where a condition can be evaluated is a reference).
  So a condition that stays true does not enter again after a stop. A `crosses_*` condition is true on one
  candle at a time, so for it this is just "it crossed".
- The first rule in the order written that wants an entry gives the side, stop and target (its own, else
  params.stop / params.target), set from this candle's close: price offset, percent of the close, or ATR
  multiples of ATR(atr_period). A rule with an ATR stop or target takes no entry before the ATR is ready.
- A position exits at the first candle where the exit condition of the rule that opened it is true (acted
  on by the next tick), at the stop, at the target, or at exit_at.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.enums import PositionSide, SignalType
from core.types import Signal, Tick
from strategies.base import Candle, CandleArrays, HeldPosition, Strategy, leading
from strategies.candle_fold import Series
from strategies.candle_strategy import CandleStrategy
from strategies.indicators import Indicator
from strategies.rules_expr import CANDLE_FIELDS, Node, evaluate_known, operands
from strategies.rules_fold import Truths, operand_columns, truths
from strategies.rules_spec import STRATEGY_ATR, Rule, compile_params

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RulesParams:
    indicators: dict[str, Any] = field(default_factory=dict)
    rules: dict[str, Any] = field(default_factory=dict)
    stop: Any = None
    target: Any = None
    candle_seconds: int = 60
    atr_period: int = 14
    exit_at: str = "15:05"


def _describe(node: Node, values: Mapping[str, float | None]) -> str:
    """The operands' values, for a signal's note: "fast 101.2000, slow 100.9000"."""
    return ", ".join(f"{o.text} {values.get(o.text)!s}" if isinstance(values.get(o.text), int) else
                     f"{o.text} {values.get(o.text):.4f}" for o in operands(node))


class RulesStrategy(CandleStrategy):
    kind = "rules"
    Params = RulesParams

    @classmethod
    def validate_params(cls, params: Mapping[str, Any]) -> list[str]:
        return compile_params(params)[1]

    def make_indicators(self) -> dict[str, Indicator[Any]]:
        spec, problems = compile_params(vars(self.params))
        assert spec is not None, problems  # validated in CandleStrategy.__init__
        self._rules: tuple[Rule, ...] = spec.rules
        self._by_name = {r.name: r for r in spec.rules}
        session_open = self.session.open.strftime("%H:%M")
        self._user = {name: ind.build(session_open) for name, ind in spec.indicators}
        fields: dict[str, tuple[str, str | None]] = {}
        for r in spec.rules:
            for node in (r.when, r.exit):
                for o in operands(node) if node is not None else ():
                    name, _, f = o.text.partition(".")
                    fields[o.text] = (name, f or None)
        self._operands = fields          # operand text -> (indicator or candle field, field of its value)
        self._needs = {id(n): tuple(o.text for o in operands(n))
                       for r in spec.rules for n in (r.when, r.exit) if n is not None}
        self._entry_rule: str | None = None     # the rule of the entry waiting for the next tick
        self._position_rule: str | None = None  # the rule that opened the position held
        return dict(self._user)

    def reset_day(self) -> None:
        self._before: dict[str, float | None] = {}          # the previous candle's operand values
        self._was: list[bool | None] = [None] * len(self._rules)  # each entry condition on the previous candle

    def extra_state(self) -> dict[str, Any]:
        return {"before": dict(self._before), "was": list(self._was), "entry_rule": self._entry_rule,
                "position_rule": self._position_rule}

    def load_extra(self, state: Mapping[str, Any]) -> None:
        self._before = {str(k): v if v is None or isinstance(v, int) else float(v)
                        for k, v in state["before"].items()}
        was = [None if v is None else bool(v) for v in state["was"]]
        if len(was) != len(self._rules):
            raise ValueError(f"state: {len(was)} rules saved -- expected {len(self._rules)}")
        self._was = was
        for k in ("entry_rule", "position_rule"):
            if state[k] is not None and state[k] not in self._by_name:
                raise ValueError(f"state: rule {state[k]!r} is not allowed -- expected one of "
                                 f"{', '.join(self._by_name)}")
        self._entry_rule, self._position_rule = state["entry_rule"], state["position_rule"]

    def _values(self, candle: Candle) -> dict[str, float | None]:
        """This candle's value of every operand the rules name (None: not ready)."""
        out: dict[str, float | None] = {}
        for text, (name, f) in self._operands.items():
            if name in CANDLE_FIELDS:
                out[text] = getattr(candle, name)
            elif name == STRATEGY_ATR:
                out[text] = self._atr.value
            else:
                v = self._user[name].value
                out[text] = v if v is None or f is None else getattr(v, f)
        return out

    def fold_read(self, run: CandleArrays, a: int, b: int, values: Series, extra: dict[str, Any],
                  side: PositionSide | None) -> tuple[int, dict[str, Any]] | None:
        """read_candle's tests as arrays (strategies/rules_fold.py): every operand's value on each candle (the
        indicators' own, so bit for bit), each rule's entry condition three-valued on each candle, an entry
        wherever one is true after false; holding, an exit wherever the opening rule's exit is true. A condition
        the array tests cannot read proves nothing (None: no fold)."""
        cls = type(self)
        if (cls.read_candle is not RulesStrategy.read_candle or cls.extra_state is not RulesStrategy.extra_state
                or cls.load_extra is not RulesStrategy.load_extra or cls._values is not RulesStrategy._values):
            return None
        raw = {text: [v if v is None or f is None else getattr(v, f) for v in values[name]]
               if name not in CANDLE_FIELDS else getattr(run, name)[a:b].tolist()
               for text, (name, f) in self._operands.items()}
        cols = operand_columns(raw, extra["before"])
        m = b - a
        act = np.zeros(m, dtype=bool)
        was_after: list[np.ndarray] = []
        for i, r in enumerate(self._rules):
            is_ = truths(r.when, self._needs[id(r.when)], cols, m)
            if is_ is None:
                return None
            was = np.empty(m, dtype=np.int8)
            was[:1] = Truths.code(extra["was"][i])
            was[1:] = is_[:-1]
            act |= (is_ == Truths.TRUE) & (was == Truths.FALSE)
            was_after.append(is_)
        held = self._by_name.get(self._position_rule) if self._position_rule is not None else None
        if side is not None and held is not None and held.exit is not None:
            out = truths(held.exit, self._needs[id(held.exit)], cols, m)
            if out is None:
                return None
            act |= out == Truths.TRUE
        n = leading(~act)
        if n == 0:
            return 0, extra
        return n, {**extra, "before": {text: raw[text][n - 1] for text in self._operands},
                   "was": [Truths.value(int(is_[n - 1])) for is_ in was_after]}

    def read_candle(self, candle: Candle) -> tuple[int, str, str]:
        for ind in self._user.values():
            ind.update(candle)
        now = self._values(candle)
        before, self._before = self._before, now
        want: Rule | None = None
        for i, r in enumerate(self._rules):
            is_ = evaluate_known(r.when, self._needs[id(r.when)], now, before)
            if want is None and is_ is True and self._was[i] is False:
                want = r
            self._was[i] = is_
        exit_note = ""
        held = self._by_name.get(self._position_rule) if self._position_rule is not None else None
        if self.position is not None and held is not None and held.exit is not None \
                and evaluate_known(held.exit, self._needs[id(held.exit)], now, before) is True:
            exit_note = f"rule {held.name} exit: {held.exit_text} ({_describe(held.exit, now)})"
        if want is None:
            return 0, "", exit_note
        self._entry_rule = want.name
        note = f"rule {want.name}: {want.when_text}"
        described = _describe(want.when, now)
        return want.side, f"{note} ({described})" if described else note, exit_note

    def entry_levels(self, entry: int, close: float, atr: float | None) -> tuple[float, float, str] | None:
        r = self._by_name[self._entry_rule] if self._entry_rule is not None else None
        assert r is not None and r.side == entry
        if atr is None and (r.stop.needs_atr or (r.target is not None and r.target.needs_atr)):
            return None
        stop = r.stop.price(close, -entry, atr)
        target = r.target.price(close, entry, atr) if r.target is not None else 0.0
        if stop <= 0 or (r.target is not None and target <= 0):
            log.info("%s %s: rule %s wants an entry at %s but its stop %s / target %s is not a price; no entry",
                     self.name, self.symbol, r.name, close, stop, target)
            return None  # a price offset larger than the price itself
        how = f"stop {r.stop.describe()}" + (f", target {r.target.describe()}" if r.target is not None else "")
        if atr is not None:
            how += f"; ATR({self.params.atr_period}) {atr:.4f}"
        return stop, target, how

    def resume_position(self, held: HeldPosition, now: int) -> None:
        """As CandleStrategy's, and the rule that opened it (named in its entry note, "rule NAME: ...") keeps its
        exit; a note that names none (a position adopted from the broker) gets the first rule of that side."""
        name = held.entry_note[5:].split(":", 1)[0] if held.entry_note.startswith("rule ") else ""
        side = 1 if held.side is PositionSide.LONG else -1
        rule = self._by_name.get(name) or next((r for r in self._rules if r.side == side), None)
        self._position_rule = None if rule is None else rule.name  # before the history is read holding it
        super().resume_position(held, now)

    def paths_known(self) -> bool:
        """This class's on_tick is CandleStrategy's and a note of the rule an entry came from: with no entry
        signalled it changes nothing, so the bulk fold's proofs hold for it (not for a subclass's own)."""
        cls = type(self)
        return (cls.on_tick is RulesStrategy.on_tick and cls.run is Strategy.run
                and cls.on_candle is CandleStrategy.on_candle)

    def on_tick(self, tick: Tick) -> Signal | None:
        sig = super().on_tick(tick)
        if sig is not None and sig.type is SignalType.ENTRY:
            self._position_rule = self._entry_rule
        return sig
