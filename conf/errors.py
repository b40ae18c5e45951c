"""Errors a job reports as one plain line (no stack trace) before exiting with status 2, a bad setting first."""

from __future__ import annotations


class SettingsError(ValueError):
    """A setting is missing, unknown or of the wrong type; the message says which and how to fix it."""


class EarshotError(RuntimeError):
    """Base of the errors an operator can fix: the message says what and how."""


class ServiceUnavailable(EarshotError):
    """Kafka or MongoDB does not answer at the configured address."""


class JobInputError(EarshotError):
    """A job was given input it cannot use (missing table, bad argument, empty library)."""
