"""Parameter search over backtests: a full grid or Optuna's TPE, on a local process pool or shared by several
hosts through Optuna's PostgreSQL-backed study.

The seam to the backtest is one function, `Evaluate`: one backtest of one point (parameter values keyed
"strategy.param") over one date range, returning its `Outcome` (the metrics.Summary and the daily equity).
Everything here (search, pool, storage, ranking) is the same whatever computes it, so wiring the runner is
one function (backtest.optimize_cli.RunnerEvaluate) and the machinery is tested with a pure one.

Determinism: a grid's results are in grid order and identical for any number of workers or hosts (each point
is one deterministic backtest). TPE is seeded and asks its trials in batches of `workers`, so a run repeats
exactly with the same seed and worker count; a shared (storage) TPE study is not reproducible, since hosts
interleave.
"""
from __future__ import annotations

import csv
import json
import logging
import math
import os
import socket
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from backtest.metrics import Summary
from backtest.sweep_params import ParamSpec, Point, Value, grid, point_label

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)

HOST = f"{socket.gethostname()}:{os.getpid()}"     # which host and process ran a trial of a shared study
OBJECTIVES = ("sharpe", "sortino", "calmar", "profit_factor", "net")
Objective = Literal["sharpe", "sortino", "calmar", "profit_factor", "net"]
Status = Literal["ok", "invalid", "few_trades", "undefined"]


@dataclass(frozen=True)
class Fold:
    """A date range one backtest covers (both ends included). index -1: the whole range, no walk-forward."""

    start: date
    end: date
    index: int = -1
    sample: Literal["full", "in", "out"] = "full"
    read_from: date | None = None   # history read from here (not traded) so the first day's data checks see the
    #                                 previous close, as in a run of the whole range (walk-forward folds)


@dataclass(frozen=True)
class Outcome:
    """What one backtest returns to the search: its summary and its daily closing equity."""

    summary: Summary
    equity: tuple[tuple[date, Decimal], ...] = ()
    candles: int = 0            # candles the backtest ran (for the sweep benchmark); 0 when not counted


Evaluate = Callable[[Point, Fold], Outcome]
"""One backtest of one point over one fold; must be picklable (a module-level function or a module-level
class's instance) to run on the process pool, and deterministic."""


@dataclass(frozen=True)
class PointResult:
    """One point's verdict: its objective (None unless ok) and the figures a results table shows."""

    index: int                  # grid order, or the trial's number
    point: Mapping[str, Value]
    status: Status
    value: float | None
    reason: str = ""
    trades: int | None = None
    figures: Mapping[str, float | None] = field(default_factory=dict)

    def row(self, specs: Sequence[ParamSpec]) -> dict[str, Any]:
        out: dict[str, Any] = {"rank": "", "index": self.index}
        out.update({s.key: self.point.get(s.key) for s in specs})
        out.update({"status": self.status, "objective": self.value, "trades": self.trades})
        out.update({k: self.figures.get(k) for k in FIGURES})
        out["reason"] = self.reason
        return out


FIGURES = ("sharpe", "sortino", "calmar", "profit_factor", "net", "total_return", "max_drawdown")


def figures(s: Summary) -> dict[str, float | None]:
    """The objectives and two more figures of a summary, as plain floats (None where undefined)."""
    return {"sharpe": s.sharpe, "sortino": s.sortino, "calmar": s.calmar,
            "profit_factor": s.trades.profit_factor, "net": float(s.net_pnl), "total_return": s.total_return,
            "max_drawdown": s.drawdown.pct}


def objective_value(s: Summary, objective: Objective) -> float | None:
    v = figures(s)[objective]
    return None if v is None or math.isnan(v) else v


@dataclass(frozen=True)
class Settings:
    """What every point of a search is judged by."""

    objective: Objective = "sharpe"
    min_trades: int = 0
    workers: int = 1


def judge(index: int, point: Point, outcome: Outcome, settings: Settings) -> PointResult:
    """A backtest's outcome as a verdict: too few positions or an undefined objective reject the point."""
    s = outcome.summary
    trades = s.trades.positions
    fig = figures(s)
    if trades < settings.min_trades:
        return PointResult(index, dict(point), "few_trades", None,
                           f"{trades} positions, fewer than --min-trades {settings.min_trades}", trades, fig)
    value = objective_value(s, settings.objective)
    if value is None:
        return PointResult(index, dict(point), "undefined", None, f"{settings.objective} is undefined", trades, fig)
    return PointResult(index, dict(point), "ok", value, "", trades, fig)


def _run_one(evaluate: Evaluate, index: int, point: Point, fold: Fold, settings: Settings) -> PointResult:
    """The unit of work on the pool: one backtest and its verdict (only the verdict crosses back)."""
    return judge(index, point, evaluate(point, fold), settings)


def ranked(results: Sequence[PointResult]) -> list[PointResult]:
    """ok points best first (ties by index, so the order never depends on timing), then the rejected ones."""
    ok = sorted((r for r in results if r.status == "ok"), key=lambda r: (-(r.value or 0.0), r.index))
    return ok + sorted((r for r in results if r.status != "ok"), key=lambda r: r.index)


# ----------------------------------------------------------------------------- the pool

@contextmanager
def worker_pool(workers: int) -> Iterator[Executor | None]:
    """Processes, not threads (a backtest is Python-bound; threads share one core). None for one worker: the
    points run in this process, in order."""
    if workers <= 1:
        yield None
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=logging_like,
                             initargs=(logging.getLogger().level,)) as pool:
        yield pool


def logging_like(level: int) -> None:
    """A pool process logs as its parent does (to stderr at the parent's level): without this the runner's
    warnings of every backtest (one per day each) would all reach the terminal."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)


OnResult = Callable[[PointResult], None]
"""Told of each verdict as it comes (progress); in this process, in completion order."""


def evaluate_points(evaluate: Evaluate, items: Sequence[tuple[int, Point]], fold: Fold, settings: Settings,
                    pool: Executor | None, on_result: OnResult | None = None) -> list[PointResult]:
    """Each point's verdict, in the order given whatever finishes first."""
    if pool is None:
        out = []
        for i, p in items:
            out.append(_run_one(evaluate, i, p, fold, settings))
            if on_result is not None:
                on_result(out[-1])
        return out
    futures: list[Future[PointResult]] = [pool.submit(_run_one, evaluate, i, p, fold, settings) for i, p in items]
    if on_result is not None:
        for f in as_completed(futures):
            on_result(f.result())
    return [f.result() for f in futures]


# ----------------------------------------------------------------------------- the grid

def grid_search(evaluate: Evaluate, specs: Sequence[ParamSpec], fold: Fold, settings: Settings,
                problems: Callable[[Point], list[str]], pool: Executor | None = None,
                on_result: OnResult | None = None) -> list[PointResult]:
    """Every point of the grid, in grid order: invalid ones (the strategy's own checks) skipped with the
    reason, the rest backtested on the pool."""
    results: dict[int, PointResult] = {}
    todo: list[tuple[int, Point]] = []
    for i, point in enumerate(grid(specs)):
        why = problems(point)
        if why:
            results[i] = PointResult(i, point, "invalid", None, "; ".join(why))
            if on_result is not None:
                on_result(results[i])
        else:
            todo.append((i, point))
    log.info("grid of %d points: %d to backtest, %d invalid", len(todo) + len(results), len(todo), len(results))
    with _own_pool(pool, settings.workers) as p:
        for r in evaluate_points(evaluate, todo, fold, settings, p, on_result):
            results[r.index] = r
    return [results[i] for i in sorted(results)]


@contextmanager
def _own_pool(pool: Executor | None, workers: int) -> Iterator[Executor | None]:
    if pool is not None or workers <= 1:
        yield pool
        return
    with worker_pool(workers) as p:
        yield p


# ----------------------------------------------------------------------------- Optuna

def _suggest(trial: optuna.trial.BaseTrial, spec: ParamSpec) -> Value:
    """The trial's value for one parameter, always one of spec.values (a float step is snapped to the exact
    value the grammar produced, so TPE and the grid see the same numbers)."""
    v = spec.values
    if spec.is_range and spec.kind == "int" and len(v) > 1:
        return trial.suggest_int(spec.key, int(v[0]), int(v[-1]), step=int(v[1]) - int(v[0]))
    if spec.is_range and spec.kind == "float" and len(v) > 1:
        got = trial.suggest_float(spec.key, float(v[0]), float(v[-1]), step=float(v[1]) - float(v[0]))
        return min(v, key=lambda x: abs(float(x) - got))
    choice = trial.suggest_categorical(spec.key, list(v))
    return v[list(v).index(choice)]  # type: ignore[arg-type]  # one of spec.values, never None


def _search_space(specs: Sequence[ParamSpec]) -> dict[str, list[Value]]:
    return {s.key: list(s.values) for s in specs}


def new_study(specs: Sequence[ParamSpec], *, grid_mode: bool, seed: int, storage: str | None = None,
              study_name: str | None = None, meta: Mapping[str, Any] | None = None) -> optuna.Study:
    """An in-memory study, or the named one in `storage` (created by the first host, joined by the others,
    which must be sweeping the same thing: `meta` is compared)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if grid_mode:
        sampler: optuna.samplers.BaseSampler = _grid_sampler(_search_space(specs), seed)
    else:
        # hosts sharing a TPE study must not all draw the same first points: mix the host into the seed
        host_seed = seed if storage is None else zlib.crc32(f"{seed}:{socket.gethostname()}:{os.getpid()}".encode())
        sampler = optuna.samplers.TPESampler(seed=host_seed)
    study = optuna.create_study(storage=None if storage is None else open_storage(storage), study_name=study_name,
                                sampler=sampler, direction="maximize", load_if_exists=storage is not None)
    if meta is not None:
        settled = study.user_attrs.get("sweep")
        want = json.loads(json.dumps(dict(meta)))
        if settled is None:
            study.set_user_attr("sweep", want)
        elif settled != want:
            raise StudyMismatch(f"--study {study_name!r} is not allowed -- that study sweeps {settled}, not {want}; "
                                "give the same flags as the host that created it, or a new --study name")
    return study


def open_storage(url: str, attempts: int = 5) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage (its tables created on first use). Hosts starting together may race to create
    them: a failed attempt is retried after a short pause."""
    import time

    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    for attempt in range(1, attempts + 1):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
        except SQLAlchemyError as e:
            if attempt == attempts:
                raise
            log.info("storage not ready (%s); attempt %d of %d", type(e).__name__, attempt, attempts)
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


def wait_for_others(study: optuna.Study, timeout_s: float) -> int:
    """Wait until no trial of the study is running (another host's last points), up to timeout_s; returns
    how many still run. A host that died leaves its trial running: the deadline bounds the wait."""
    import time

    from optuna.trial import TrialState

    deadline = time.monotonic() + timeout_s
    while True:
        running = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
        if running == 0 or time.monotonic() >= deadline:
            return running
        time.sleep(0.2)


def _grid_sampler(space: dict[str, list[Value]], seed: int) -> optuna.samplers.GridSampler:
    """Optuna's GridSampler without its stop() after the last point, which only works inside study.optimize;
    the ask/tell loop here stops by counting trials."""
    import optuna

    class AskTellGrid(optuna.samplers.GridSampler):
        def after_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial,
                        state: optuna.trial.TrialState, values: Sequence[float] | None) -> None:
            return None

    return AskTellGrid(space, seed=seed)


class StudyMismatch(ValueError):
    """A host joined a shared study with different parameters, objective or dates."""


def optuna_search(evaluate: Evaluate, specs: Sequence[ParamSpec], fold: Fold, settings: Settings,
                  problems: Callable[[Point], list[str]], study: optuna.Study, *, trials: int | None,
                  pool: Executor | None = None, wait_s: float = 0.0,
                  on_result: OnResult | None = None) -> list[PointResult]:
    """Ask/tell in batches of `workers`: each batch is evaluated on the pool, then told, so TPE learns from
    everything before the next batch. `trials`: the study's total (None with a grid: until it is exhausted).
    A repeated point is not backtested twice. Returns every finished trial of the study (other hosts' too,
    after waiting up to wait_s for those still running)."""
    import optuna
    from optuna.trial import TrialState

    n_grid = None
    if isinstance(study.sampler, optuna.samplers.GridSampler):
        n_grid = 1
        for s in specs:
            n_grid *= len(s.values)
    budget = n_grid if trials is None else (trials if n_grid is None else min(trials, n_grid))
    if budget is None:
        raise ValueError("a TPE search needs a number of trials")
    seen: dict[tuple[Value, ...], PointResult] = {}
    batch = max(1, settings.workers)
    with _own_pool(pool, settings.workers) as p:
        while True:
            started = len(study.get_trials(deepcopy=False))
            room = min(batch, budget - started)
            if room <= 0:
                break
            asked: list[tuple[optuna.trial.Trial, Point]] = []
            for _ in range(room):
                trial = study.ask()
                if n_grid is not None and trial.number >= n_grid:   # another host took the last point
                    study.tell(trial, state=TrialState.FAIL)
                    continue
                point: dict[str, Value] = {s.key: _suggest(trial, s) for s in specs}
                trial.set_user_attr("point", dict(point))
                trial.set_user_attr("host", HOST)
                asked.append((trial, point))
            todo: list[tuple[int, Point]] = []
            for trial, asked_point in asked:
                key = tuple(asked_point.values())
                why = problems(asked_point)
                told = None
                if why:
                    told = PointResult(trial.number, asked_point, "invalid", None, "; ".join(why))
                elif key in seen:
                    told = _renumbered(seen[key], trial.number)
                else:
                    todo.append((trial.number, asked_point))
                if told is not None:
                    _tell(study, trial, told)
                    if on_result is not None:
                        on_result(told)
            by_number = {t.number: t for t, _ in asked}
            for r in evaluate_points(evaluate, todo, fold, settings, p, on_result):
                seen[tuple(r.point.values())] = r
                _tell(study, by_number[r.index], r)
            if not asked:
                break
    if wait_s > 0:
        running = wait_for_others(study, wait_s)
        if running:
            log.error("%d trial(s) of study %s still running on other hosts after %.0f s; not in these results",
                        running, study.study_name, wait_s)
    return study_results(study, specs)


def _renumbered(r: PointResult, index: int) -> PointResult:
    return PointResult(index, r.point, r.status, r.value, r.reason, r.trades, r.figures)


def _tell(study: optuna.Study, trial: optuna.trial.Trial, r: PointResult) -> None:
    from optuna.trial import TrialState

    trial.set_user_attr("status", r.status)
    trial.set_user_attr("reason", r.reason)
    trial.set_user_attr("trades", r.trades)
    trial.set_user_attr("figures", dict(r.figures))
    if r.status == "ok":
        study.tell(trial, r.value)
    else:
        study.tell(trial, state=TrialState.PRUNED)     # a rejected point: TPE treats it as worse than any


def study_results(study: optuna.Study, specs: Sequence[ParamSpec]) -> list[PointResult]:
    """The finished trials as verdicts, one per point (a grid point two hosts both ran counts once), indexed
    by grid order for a grid and by trial number for TPE."""
    import optuna
    from optuna.trial import TrialState

    is_grid = isinstance(study.sampler, optuna.samplers.GridSampler)
    order = {tuple(p.values()): i for i, p in enumerate(grid(specs))} if is_grid else {}
    out: dict[tuple[Value, ...], PointResult] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        point = t.user_attrs.get("point")
        status = t.user_attrs.get("status")
        if point is None or status is None:
            continue
        key = tuple(point[s.key] for s in specs)
        index = order.get(key, t.number)
        r = PointResult(index, {s.key: point[s.key] for s in specs}, status,
                        t.value if status == "ok" else None, t.user_attrs.get("reason", ""),
                        t.user_attrs.get("trades"), t.user_attrs.get("figures", {}))
        if key not in out or out[key].index > r.index:
            out[key] = r
    return sorted(out.values(), key=lambda r: r.index)


# ----------------------------------------------------------------------------- output

def write_csv(path: Path, results: Sequence[PointResult], specs: Sequence[ParamSpec]) -> Path:
    """optimize.csv: every point, ranked (the best first), rejected ones last with their reason."""
    rows = []
    for rank, r in enumerate(ranked(results), 1):
        row = r.row(specs)
        row["rank"] = rank if r.status == "ok" else ""
        rows.append(row)
    header = ["rank", "index", *(s.key for s in specs), "status", "objective", "trades", *FIGURES, "reason"]
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        for row in rows:
            w.writerow({k: "" if v is None else v for k, v in row.items()})
    os.replace(tmp, path)
    return path


def table(results: Sequence[PointResult], specs: Sequence[ParamSpec], objective: str, top: int) -> str:
    """The best `top` points as a text table, and how many were rejected and why."""
    best = [r for r in ranked(results) if r.status == "ok"][:top]
    head = ["#", *(s.key for s in specs), objective, "trades", "net", "max dd"]
    rows = [[str(i), *(str(r.point[s.key]) for s in specs), _num(r.value), str(r.trades),
             _num(r.figures.get("net")), _pct(r.figures.get("max_drawdown"))] for i, r in enumerate(best, 1)]
    widths = [max(len(h), *(len(row[c]) for row in rows)) if rows else len(h) for c, h in enumerate(head)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    rejected: dict[str, int] = {}
    for r in results:
        if r.status != "ok":
            rejected[r.status] = rejected.get(r.status, 0) + 1
    ok = sum(1 for r in results if r.status == "ok")
    tail = f"{len(results)} points: {ok} ok"
    if rejected:
        tail += ", rejected " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(rejected.items()))
    if not best:
        lines.append("(no point passed)")
    return "\n".join([*lines, tail])


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:,.3f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.2f}%"


def best_point(results: Sequence[PointResult]) -> PointResult | None:
    ok = [r for r in ranked(results) if r.status == "ok"]
    return ok[0] if ok else None


def describe(r: PointResult) -> str:
    return f"{point_label(r.point)} ({r.status}{': ' + r.reason if r.reason else ''})"
