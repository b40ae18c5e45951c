"""A listener's recommendation: its ranked items, as dicts or as the serving store's parallel arrays."""

from __future__ import annotations

from collections.abc import Sequence

ITEM_FIELDS = ("track_id", "score", "reason", "genre")


class Recommendation:
    """One listener's answer: its ``source`` ("taste" or "radio") and ranked items (track_id, score, reason, genre).

    Held as one list of dicts (``items``) or as the serving store's parallel arrays (``columns``,
    :func:`stored_items`), whichever it was made from; the other form is built when first asked for.
    """

    __slots__ = ("source", "_items", "_columns")

    def __init__(self, source: str, items: list[dict] | None = None):
        self.source = source
        self._items = list(items) if items is not None else []
        self._columns: dict[str, list] | None = None

    @classmethod
    def of_columns(cls, source: str, columns: dict[str, list]) -> Recommendation:
        rec = cls(source)
        rec._items, rec._columns = None, columns
        return rec

    @property
    def items(self) -> list[dict]:
        if self._items is None:
            self._items = items_of(self._columns)
        return self._items

    @property
    def columns(self) -> dict[str, list]:
        if self._columns is None:
            self._columns = stored_items(self._items)
        return self._columns

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Recommendation) and (self.source, self.items) == (other.source, other.items)

    def __repr__(self) -> str:
        return f"Recommendation({self.source!r}, {self.items!r})"


def stored_items(items: Sequence[dict]) -> dict[str, list]:
    """Items as the serving store keeps them: one list per field, in rank order (``items.track_id[0]`` is first).

    One document of parallel arrays, not a list of sub-documents: the MongoDB-protocol
    server's cost is per value and per nested document, and this shape measured 1.6x the
    upserts per second of the nested one (README, "The serving store").
    """
    return {f: [item[f] for item in items] for f in ITEM_FIELDS}


def items_of(stored: dict | None) -> list[dict]:
    """The ranked items of a stored ``items`` field (:func:`stored_items`), one dict each; [] when absent."""
    if not stored:
        return []
    fields = [f for f in ITEM_FIELDS if f in stored]
    n = min((len(stored[f]) for f in fields), default=0)
    return [{f: stored[f][i] for f in fields} for i in range(n)]
