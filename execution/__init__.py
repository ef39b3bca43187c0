"""The order lifecycle: the persisted state machine, sending to the broker, and tracking fills."""
