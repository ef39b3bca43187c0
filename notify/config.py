"""The `notifications` section of config.yaml, and its URLs with their `${NAME}` references resolved.

A URL may hold secrets (a bot token, a webhook key), so config.yaml names them instead: `${TELEGRAM_URL}` (a
whole URL) or `tgram://${TG_TOKEN}/${TG_CHAT}` (parts), read from the environment or `.env` like every other
secret. A name that is set nowhere stops start-up (exit 2) naming it. A resolved URL is never logged: channels
are named by position and scheme only (`urls[0] (tgram)`), and the resolved values join the log redaction.
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from notify.events import KINDS, Level

_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
LEVELS = {"info": Level.INFO, "warning": Level.WARNING, "critical": Level.CRITICAL}
SETTINGS = ("off", *LEVELS)
_KEYS = ("urls", "min_level", "events", "storm_limit", "storm_window_s", "queue_size")


@dataclass(frozen=True)
class UrlSpec:
    url: str                   # as written in config: may hold ${NAME} references
    min_level: Level | None    # None: the section's min_level


@dataclass(frozen=True)
class NotificationsConfig:
    urls: tuple[UrlSpec, ...] = ()
    min_level: Level = Level.INFO
    events: Mapping[str, Level | None] = field(default_factory=dict)  # kind -> level, None: off
    storm_limit: int = 5          # at most this many of one event per window; the rest are counted and summarised
    storm_window_s: float = 60.0
    queue_size: int = 1000        # per URL; what does not fit is counted and reported, never lost silently

    def level_of(self, kind: str) -> Level | None:
        """The configured level of an event kind (None: off)."""
        if kind in self.events:
            return self.events[kind]
        cls = KINDS.get(kind)
        return cls.default_level if cls is not None else Level.INFO


@dataclass(frozen=True)
class Channel:
    """One resolved URL: `name` is what logs show of it (position and scheme, never the URL)."""

    name: str
    url: str
    min_level: Level
    secrets: tuple[str, ...]  # the values its ${NAME} references resolved to


def _level(key: str, v: Any, problems: list[str], allow_off: bool) -> Level | None:
    allowed = SETTINGS if allow_off else tuple(LEVELS)
    if v is False and allow_off:  # YAML 1.1 reads a bare off as false
        return None
    if not isinstance(v, str) or v.lower() not in allowed:
        problems.append(f"{key}: {v!r} is not allowed -- expected one of {', '.join(allowed)}")
        return None
    return None if v.lower() == "off" else LEVELS[v.lower()]


def parse_notifications(raw: Any, problems: list[str]) -> NotificationsConfig:
    """The section, checked; problems are appended as "key: value -- what is allowed"."""
    if raw is None:
        return NotificationsConfig()
    if not isinstance(raw, dict):
        problems.append(f"notifications: {raw!r} is not allowed -- expected a mapping with urls, min_level, events")
        return NotificationsConfig()
    for k in raw:
        if k not in _KEYS:
            problems.append(f"notifications.{k}: unknown key -- allowed keys are {', '.join(_KEYS)}")
    urls: list[UrlSpec] = []
    raw_urls = raw.get("urls") or []
    if not isinstance(raw_urls, list):
        problems.append(f"notifications.urls: {raw_urls!r} is not allowed -- expected a list of Apprise URLs")
        raw_urls = []
    for i, u in enumerate(raw_urls):
        key = f"notifications.urls[{i}]"
        if isinstance(u, str):
            u = {"url": u}
        if not isinstance(u, dict) or not isinstance(u.get("url"), str) or not u["url"].strip():
            problems.append(f"{key}: not allowed -- expected an Apprise URL, or a mapping with url and min_level")
            continue
        for k in u:
            if k not in ("url", "min_level"):
                problems.append(f"{key}.{k}: unknown key -- allowed keys are url, min_level")
        lvl = _level(f"{key}.min_level", u["min_level"], problems, False) if "min_level" in u else None
        urls.append(UrlSpec(u["url"].strip(), lvl))
    min_level = Level.INFO
    if "min_level" in raw:
        min_level = _level("notifications.min_level", raw["min_level"], problems, False) or Level.INFO
    events: dict[str, Level | None] = {}
    raw_events = raw.get("events") or {}
    if not isinstance(raw_events, dict):
        problems.append(f"notifications.events: {raw_events!r} is not allowed -- expected a mapping of event to "
                        f"level ({', '.join(SETTINGS)})")
        raw_events = {}
    for kind, v in raw_events.items():
        if kind not in KINDS:
            problems.append(f"notifications.events.{kind}: unknown event -- known events are {', '.join(KINDS)}")
            continue
        n = len(problems)
        lvl = _level(f"notifications.events.{kind}", v, problems, True)
        if len(problems) == n:
            events[kind] = lvl
    out: dict[str, Any] = {}
    for key, typ, lo in (("storm_limit", int, 1), ("storm_window_s", float, 1), ("queue_size", int, 10)):
        if key not in raw:
            continue
        v = raw[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (typ is int and not isinstance(v, int)) \
                or v < lo:
            what = "a whole number" if typ is int else "a number"
            problems.append(f"notifications.{key}: {v!r} is not allowed -- expected {what} of at least {lo}")
            continue
        out[key] = typ(v)
    return NotificationsConfig(urls=tuple(urls), min_level=min_level, events=events, **out)


def env_values(env_path: Path | None = None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`.env` overlaid by the process environment, as core.config.load_secrets reads them."""
    from dotenv import dotenv_values

    from core.config import DEFAULT_ENV_PATH

    path = DEFAULT_ENV_PATH if env_path is None else env_path
    env = {k: v for k, v in dotenv_values(path).items() if v is not None} if path.exists() else {}
    env.update(os.environ if environ is None else environ)
    return env


def channels(cfg: NotificationsConfig, env: Mapping[str, str]) -> tuple[list[Channel], list[str]]:
    """Each URL with its references resolved; problems name a missing variable or an unusable URL (masked)."""
    out: list[Channel] = []
    problems: list[str] = []
    if not cfg.urls:
        return out, problems
    import apprise

    for i, spec in enumerate(cfg.urls):
        key = f"notifications.urls[{i}]"
        names = _REF.findall(spec.url)
        missing = [n for n in names if not (env.get(n) or "").strip()]
        if missing:
            problems.append(f"{key}: {', '.join(missing)} is not set -- set it in .env (or the environment), or "
                            "remove the reference")
            continue
        url = _REF.sub(lambda m: (env.get(m.group(1)) or "").strip(), spec.url)
        scheme = url.split("://", 1)[0] if "://" in url else "?"
        name = f"urls[{i}] ({scheme})"
        quiet = logging.getLogger("apprise")
        was, quiet.disabled = quiet.disabled, True  # it would print a URL it cannot parse, secrets and all
        try:
            usable = apprise.Apprise.instantiate(url) is not None
        finally:
            quiet.disabled = was
        if not usable:
            problems.append(f"{key}: not an Apprise URL that can be used (scheme {scheme!r}; see Apprise's list of "
                            "services)")
            continue
        secrets = tuple(v for v in ((env.get(n) or "").strip() for n in names) if len(v) >= 4)
        out.append(Channel(name, url, spec.min_level or cfg.min_level, secrets))
    return out, problems
