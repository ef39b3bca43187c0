"""The dashboard's routes: the page, its snapshot as server-sent events, and the operator's controls.

    GET  /                the page (static/index.html with its script and style, vendored: no CDN)
    GET  /api/state       the current snapshot as JSON
    GET  /api/events      server-sent events: each part of the snapshot ("live", "rows", "log") whenever it
                          changes, whole ("rows") or as what changed since the version sent before ("rows_delta")
    POST /api/control     {"action": pause|resume|flatten|flatten_all|halt, "symbol": ...}: recorded, queued
                          for the trading thread; 202 with the control's row (its outcome follows in the stream)
    GET  /api/backtest    the backtest runs under <reports_dir>/backtest/ that have a summary.json (read-only)
    GET  /api/backtest/ID that run's summary.json as written by the backtest
    GET  /api/backtest/ID/equity   equity and drawdown after each of its exits (from trades.csv)
    GET  /api/backtest/ID/trades   a page of its trades: ?sort=exit_time|net_pnl&order=asc|desc&page=N&size=N

Everything sits behind dashboard.auth.TokenGate.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from dashboard import backtests as bt
from dashboard.auth import TokenGate
from dashboard.hub import PARTS, Hub
from execution.operator import OperatorDesk

STATIC = Path(__file__).resolve().parent / "static"
STREAM_EVERY_S = 0.25  # how often a stream looks at the hub's version (in memory: no read)
KEEPALIVE_S = 15.0


def build_app(hub: Hub, desk: OperatorDesk | None, token: str, backtests: Path | None = None) -> TokenGate:
    """The Starlette app behind the token gate; `desk` None: read-only (controls answer 403). `backtests`:
    the folder of backtest runs (reports/backtest), shown read-only."""

    async def page(_: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})

    async def state(_: Request) -> Response:
        return Response(hub.snapshot_json(), media_type="application/json", headers={"cache-control": "no-store"})

    async def events(request: Request) -> Response:
        async def stream() -> AsyncIterator[str]:
            seen, quiet = {part: -1 for part in PARTS}, 0.0
            while not await request.is_disconnected() and not hub.stop_event.is_set():  # ends at shutdown
                sent = False
                for part in PARTS:  # the delta from the version this stream sent last, else the part whole
                    msg = hub.message(part, seen[part])
                    if msg is not None:
                        seen[part], event, payload = msg
                        quiet, sent = 0.0, True
                        yield f"event: {event}\ndata: {payload}\n\n"
                if not sent and quiet >= KEEPALIVE_S:
                    quiet = 0.0
                    yield ": keep-alive\n\n"
                await asyncio.sleep(STREAM_EVERY_S)
                quiet += STREAM_EVERY_S
        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"cache-control": "no-store", "x-accel-buffering": "no"})

    async def control(request: Request) -> Response:
        if desk is None:
            return JSONResponse({"error": "read-only: this dashboard shows a finished day"}, status_code=403)
        try:
            body = json.loads(await request.body() or b"{}")
            if not isinstance(body, dict):
                raise ValueError("expected a JSON object")
        except ValueError as e:
            return JSONResponse({"error": f"body: not a JSON object ({e})"}, status_code=400)
        client = request.client.host if request.client else "?"
        who = f"dashboard {client} {request.headers.get('user-agent', '')[:80]}".strip()
        try:
            rec = await asyncio.to_thread(desk.request, str(body.get("action")),
                                          body.get("symbol") and str(body["symbol"]), who)
        except ValueError as e:
            return JSONResponse({"error": str(e)}, status_code=400)
        return JSONResponse(rec, status_code=202)

    async def runs(_: Request) -> Response:
        found = await asyncio.to_thread(bt.list_runs, backtests) if backtests is not None else []
        return JSONResponse({"runs": found})

    def listed(request: Request) -> Path:
        if backtests is None:
            raise bt.RunNotFound(request.path_params["run_id"])
        return bt.run_dir(backtests, request.path_params["run_id"])

    async def run(request: Request) -> Response:
        try:
            folder = await asyncio.to_thread(listed, request)
        except bt.RunNotFound as e:
            return JSONResponse({"error": f"no backtest run {str(e)!r}"}, status_code=404)
        return FileResponse(folder / "summary.json", media_type="application/json")

    async def run_part(request: Request, read: Callable[[Path], dict[str, Any]]) -> Response:
        try:
            folder = await asyncio.to_thread(listed, request)
            body = await asyncio.to_thread(read, folder)
        except bt.RunNotFound as e:
            return JSONResponse({"error": f"no backtest run {str(e)!r}"}, status_code=404)
        except bt.BadRunFile as e:
            return JSONResponse({"error": f"backtest run {request.path_params['run_id']!r}: {e}"}, status_code=422)
        except ValueError as e:
            return JSONResponse({"error": str(e)}, status_code=400)
        return JSONResponse(body, headers={"cache-control": "no-store"})

    async def run_equity(request: Request) -> Response:
        return await run_part(request, bt.equity_curve)

    async def run_trades(request: Request) -> Response:
        q = request.query_params

        def number(key: str, default: int) -> int:
            raw = q.get(key, str(default))
            try:
                return int(raw)
            except ValueError:
                raise ValueError(f"{key}: {raw!r} is not a whole number") from None

        def read(folder: Path) -> dict[str, Any]:
            order = q.get("order", "asc")
            if order not in ("asc", "desc"):
                raise ValueError(f"order: {order!r} is not asc or desc")
            return bt.trades_page(folder, q.get("sort", "exit_time"), order == "desc", number("page", 1),
                                  number("size", 50))
        return await run_part(request, read)

    app = Starlette(routes=[
        Route("/api/backtest", runs), Route("/api/backtest/{run_id}", run),
        Route("/api/backtest/{run_id}/equity", run_equity), Route("/api/backtest/{run_id}/trades", run_trades),
        Route("/", page), Route("/api/state", state), Route("/api/events", events),
        Route("/api/control", control, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ])
    return TokenGate(app, token)
