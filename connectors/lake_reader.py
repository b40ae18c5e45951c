"""Reading a Delta table without Spark (the ``deltalake`` package): for servers and pages that must not start a JVM."""

from __future__ import annotations

import pandas as pd


class NoTable(LookupError):
    """No Delta table at the location yet."""


def read_pandas(location: str, *, columns: list[str] | None = None) -> pd.DataFrame:
    """The whole table (or ``columns`` of it) as pandas; :class:`NoTable` when there is none."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        return DeltaTable(location).to_pandas(columns=columns)
    except TableNotFoundError:
        raise NoTable(location) from None
