"""Tick sources for the daemon: the live Fyers socket, a simulated socket replaying recorded or
synthetic days through the same interface, and the recorder that makes a live day replayable.

All of them produce ticks in the exact shape the Fyers SDK hands to on_message (core.types.FyersTick).
Submodules are imported on demand; nothing here imports the Fyers SDK or numpy at package import.
"""
