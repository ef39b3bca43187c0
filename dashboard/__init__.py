"""The operator's web dashboard: live positions, orders, signals, state, health and logs, with controls."""
