"""The dashboard's routes: the page, its snapshot as server-sent events, and the operator's controls.

    GET  /                the page (static/index.html with its script and style, vendored: no CDN)
    GET  /api/state       the current snapshot as JSON
    GET  /api/events      server-sent events: each part of the snapshot ("live", "rows") whenever it changes
    POST /api/control     {"action": pause|resume|flatten|flatten_all|halt, "symbol": ...}: recorded, queued
                          for the trading thread; 202 with the control's row (its outcome follows in the stream)
    GET  /api/backtest    the backtest runs under <reports_dir>/backtest/ that have a summary.json (read-only)
    GET  /api/backtest/ID that run's summary.json as written by the backtest

Everything sits behind dashboard.auth.TokenGate.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from dashboard.auth import TokenGate
from dashboard.hub import Hub
from execution.operator import OperatorDesk

STATIC = Path(__file__).resolve().parent / "static"
STREAM_EVERY_S = 0.25  # how often a stream looks at the hub's version (in memory: no read)
KEEPALIVE_S = 15.0


def backtest_runs(folder: Path) -> list[str]:
    """Run ids (folder names) that hold a summary.json, newest first by the file's time."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.glob("*/summary.json") if p.is_file()]
    return [p.parent.name for p in sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)]


def build_app(hub: Hub, desk: OperatorDesk | None, token: str, backtests: Path | None = None) -> TokenGate:
    """The Starlette app behind the token gate; `desk` None: read-only (controls answer 403). `backtests`:
    the folder of backtest runs (reports/backtest), shown read-only."""

    async def page(_: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})

    async def state(_: Request) -> Response:
        return Response(hub.snapshot_json(), media_type="application/json", headers={"cache-control": "no-store"})

    async def events(request: Request) -> Response:
        async def stream() -> AsyncIterator[str]:
            seen, quiet = {"rows": -1, "live": -1}, 0.0
            while not await request.is_disconnected():
                sent = False
                for part in ("rows", "live"):
                    version, payload = hub.latest(part)
                    if version != seen[part]:
                        seen[part], quiet, sent = version, 0.0, True
                        yield f"event: {part}\ndata: {payload}\n\n"
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
        return JSONResponse({"runs": backtest_runs(backtests) if backtests is not None else []})

    async def run(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        if backtests is None or run_id not in backtest_runs(backtests):  # only a listed folder: no path from input
            return JSONResponse({"error": f"no backtest run {run_id!r}"}, status_code=404)
        return FileResponse(backtests / run_id / "summary.json", media_type="application/json")

    app = Starlette(routes=[
        Route("/api/backtest", runs), Route("/api/backtest/{run_id}", run),
        Route("/", page), Route("/api/state", state), Route("/api/events", events),
        Route("/api/control", control, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ])
    return TokenGate(app, token)
