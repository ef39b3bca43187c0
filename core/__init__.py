"""Pieces every process shares: configuration, enums, message types, clock, logging."""
