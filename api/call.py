"""One API call's parameters, decoded and checked in one place (anything from a client is hostile until here)."""

from __future__ import annotations

from dataclasses import dataclass, field

from api.respond import MISSING, NOT_FOUND, ApiError

MAX_VALUE = 4096  # characters in any one parameter
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass
class Call:
    params: dict[str, list[str]]
    user: str = ""
    client: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "GET"  # HEAD: the caller wants the answer's headers only

    def one(self, name: str, default: str | None = None, *, required: bool = False) -> str | None:
        values = self.params.get(name)
        if not values or values[0] == "" and required:
            if required:
                raise ApiError(MISSING, f"required parameter is missing: {name}")
            return default
        return values[0][:MAX_VALUE]

    def need(self, name: str) -> str:
        value = self.one(name, required=True)
        assert value is not None
        return value

    def many(self, name: str) -> list[str]:
        return [v[:MAX_VALUE] for v in self.params.get(name, [])]

    def integer(self, name: str, default: int | None = None, *, lo: int | None = None, hi: int | None = None) -> int:
        raw = self.one(name)
        if raw is None or raw == "":
            if default is None:
                raise ApiError(MISSING, f"required parameter is missing: {name}")
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ApiError(MISSING, f"{name} must be an integer, got {raw[:40]!r}") from None
        if not INT64_MIN <= value <= INT64_MAX:  # a store keeps 8-byte integers: none larger means anything here
            raise ApiError(MISSING, f"{name} must be an integer of at most 64 bits, got {raw[:40]!r}")
        if lo is not None:
            value = max(lo, value)
        if hi is not None:
            value = min(hi, value)
        return value

    def flag(self, name: str, default: bool = False) -> bool:
        raw = self.one(name)
        return default if raw is None else raw.strip().lower() in ("true", "1", "yes")


def song_id(raw: str) -> int:
    """A song id as the server hands them out (the catalogue id), else not found."""
    if not (raw.isascii() and raw.isdigit() and 0 < len(raw) <= 19):
        raise ApiError(NOT_FOUND, f"song not found: {raw[:40]!r}")
    return int(raw)
