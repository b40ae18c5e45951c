"""The dashboard's pages, one function each (``dashboard/app.py`` puts them in the navigation).

The player lives in ``dashboard.player``, the operator's pages in ``dashboard.operator``.
"""

from __future__ import annotations

from dashboard.operator import analytics, library_map, monitoring
from dashboard.player import player

__all__ = ["analytics", "library_map", "monitoring", "player"]
