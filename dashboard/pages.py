"""The dashboard's pages, one function each (``dashboard/app.py`` puts them in the navigation).

The player lives in ``dashboard.player``, playlists in ``dashboard.playlists``, analytics in
``dashboard.analytics``, the operator's pages in ``dashboard.operator``.
"""

from __future__ import annotations

from dashboard.analytics import analytics
from dashboard.operator import library_map, monitoring
from dashboard.player import player
from dashboard.playlists import playlists

__all__ = ["analytics", "library_map", "monitoring", "player", "playlists"]
