"""Input rules every door shares (the API's fields, the bulk import service, the
compatibility dialects): what an id, a count and a yes/no can be. No DRF here: a
service parses with these without importing the API layer."""

from __future__ import annotations

from typing import Any, TypeGuard

# The largest id a bigint column holds (PostgreSQL and SQLite alike): a larger integer
# is refused as input (400) before it reaches a query, where SQLite would overflow.
ID_MAX = 2**63 - 1
# The largest count an integer column holds (quantities).
INT_MAX = 2**31 - 1

YES_NO_TRUE = frozenset({"yes", "true", "1", "on"})
YES_NO_FALSE = frozenset({"no", "false", "0", "off"})
YES_NO_INVALID = 'Must be true, false, "yes" or "no".'


def parse_yes_no(data: Any) -> bool | None:
    """The API's one rule for booleans: true/false, or "yes"/"no" (also "true"/"false",
    "1"/"0", "on"/"off"; any case, spaces ignored). None: not a boolean."""
    if isinstance(data, bool):
        return data
    if isinstance(data, str):
        text = data.strip().lower()
        if text in YES_NO_TRUE:
            return True
        if text in YES_NO_FALSE:
            return False
    return None


def is_id(value: Any) -> TypeGuard[int]:
    """An integer (not a boolean) in 1..2**63-1: what an id can be."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= ID_MAX
