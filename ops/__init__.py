"""Operator-facing pieces: status, end-of-session report, market calendar, replay progress, heartbeat."""
