"""Errors that end start-up or the run with a message for the user instead of a traceback."""


class StartupError(Exception):
    """The daemon cannot start; the message says why and what to do."""
