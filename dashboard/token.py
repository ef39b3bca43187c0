"""Where the dashboard's token comes from: DASHBOARD_TOKEN in the environment, else in .env. Apart from the server
so that the driver can check it, and start the dashboard's process, without importing the web stack."""
from __future__ import annotations

import os
from pathlib import Path

from dotenv import dotenv_values

from core.config import DEFAULT_ENV_PATH

TOKEN_KEY = "DASHBOARD_TOKEN"


def load_token(env_path: Path | None = None) -> str | None:
    """DASHBOARD_TOKEN from the environment, else from .env; None if unset or blank. A variable set in the
    environment wins even when blank, as for every other secret (core.config.load_secrets)."""
    value = os.environ.get(TOKEN_KEY)
    if value is None:
        path = DEFAULT_ENV_PATH if env_path is None else env_path
        value = dotenv_values(path).get(TOKEN_KEY) if path.exists() else None
    value = (value or "").strip()
    return value or None
