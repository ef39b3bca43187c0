"""Notifications to the trader's phone (Telegram, Discord, Slack, ntfy, e-mail, JSON webhooks) through Apprise.

Like logging, one notifier per process, installed by the driver at start-up: the places where events happen
call `notify.emit(SomeEvent(...))` and need no wiring; without an installed notifier (tests, other processes,
no URLs configured) emit does nothing. emit never blocks and never raises.

    notify.events    one frozen definition per event (past tense), with its default level and text
    notify.config    the config.yaml section; URLs with ${NAME} references resolved from .env
    notify.notifier  levels, storm limits, a bounded queue and a sender thread per URL
"""
from __future__ import annotations

import logging

from notify.config import NotificationsConfig
from notify.events import Event
from notify.notifier import Notifier

log = logging.getLogger(__name__)

_current: Notifier | None = None


def emit(ev: Event) -> None:
    """Hand `ev` to the installed notifier, if any; returns at once, whatever the endpoints do."""
    n = _current
    if n is None:
        return
    try:
        n.emit(ev)
    except Exception:  # noqa: BLE001 - a notification must never break the caller (the trading thread)
        log.exception("notifications: could not queue %s", type(ev).__name__)


def start(cfg: NotificationsConfig) -> Notifier | None:
    """Resolve the URLs (from .env and the environment), mask them in every log line, start the senders and
    install the notifier; None when no URL is configured. Raises ValueError listing unresolvable URLs."""
    global _current
    if not cfg.urls:
        return None
    from core.logs import add_secrets
    from notify.config import channels, env_values

    chans, problems = channels(cfg, env_values())
    if problems:
        raise ValueError("; ".join(problems))
    add_secrets([c.url for c in chans] + [v for c in chans for v in c.secrets])
    logging.getLogger("apprise").setLevel(logging.WARNING)
    n = Notifier(cfg, chans)
    n.start()
    _current = n
    log.info("notifications: sending to %s", ", ".join(c.name for c in chans))
    return n


def stop(timeout_s: float = 10.0) -> None:
    """Send what is queued (bounded by `timeout_s`) and uninstall the notifier."""
    global _current
    n, _current = _current, None
    if n is not None:
        n.close(timeout_s)
