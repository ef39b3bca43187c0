"""The one way the paper broker says no: an HTTP status and the exact JSON body OpenAlgo would send."""
from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(self, http_status: int, body: dict[str, Any]):
        super().__init__(body.get("message"))
        self.http_status = http_status
        self.body = body


def analyze_error(http_status: int, message: str, **extra: Any) -> ApiError:
    """A sandbox-service refusal: carries "mode":"analyze" like OpenAlgo's analyzer mode."""
    return ApiError(http_status, {"status": "error", "message": message, **extra, "mode": "analyze"})


INVALID_APIKEY = ApiError(403, {"status": "error", "message": "Invalid openalgo apikey"})
RATE_LIMITED_BODY = {"status": "error", "message": "Rate limit exceeded. Please slow down your requests.",
                     "retry_after": 60}
