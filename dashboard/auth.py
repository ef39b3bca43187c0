"""The dashboard's one rule of access: every request carries DASHBOARD_TOKEN, or gets 401.

Accepted: an `Authorization: Bearer <token>` header; the `dashboard_token` cookie; or, on a page load (GET), a
`token` query parameter, answered with a redirect to the same path without it that sets the cookie (HttpOnly,
SameSite=Strict, path /), so the token leaves the address bar and the browser's history at once. SameSite=Strict
keeps another site's page from posting a control with the cookie. Comparisons are constant-time. The token is
never logged: uvicorn's access log is off (server.py), and nothing here logs a request.
"""
from __future__ import annotations

import hmac
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Receive, Scope, Send

COOKIE = "dashboard_token"


def _cookie(headers: dict[bytes, bytes]) -> str | None:
    for part in headers.get(b"cookie", b"").decode("latin-1").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return None


class TokenGate:
    """ASGI middleware: lets a request through only with the token (see the module's docstring)."""

    def __init__(self, app: ASGIApp, token: str):
        if len(token) < 16:
            raise ValueError("DASHBOARD_TOKEN: too short -- use at least 16 characters (./dev.sh setup writes one)")
        self.app, self.token = app, token.encode()

    def _ok(self, value: str | None) -> bool:
        return value is not None and hmac.compare_digest(value.encode(), self.token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if auth.lower().startswith("bearer ") and self._ok(auth[7:].strip()):
            await self.app(scope, receive, send)
            return
        if self._ok(_cookie(headers)):
            await self.app(scope, receive, send)
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = [v for k, v in query if k == "token"]
        if scope["type"] == "http" and scope.get("method") == "GET" and given and self._ok(given[-1]):
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            location = scope.get("root_path", "") + scope["path"] + (f"?{rest}" if rest else "")
            await send({"type": "http.response.start", "status": 303,
                        "headers": [(b"location", location.encode("latin-1")),
                                    (b"set-cookie", f"{COOKIE}={given[-1]}; HttpOnly; SameSite=Strict; Path=/"
                                     .encode("latin-1")),
                                    (b"cache-control", b"no-store"), (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        body = b"401 Unauthorized: give DASHBOARD_TOKEN (Authorization: Bearer, or ?token= on the first page load)\n"
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"www-authenticate", b'Bearer realm="dashboard"'),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
