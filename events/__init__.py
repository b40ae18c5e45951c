"""The listening-event contract (``events.contract``) and a producer helper for client apps."""
