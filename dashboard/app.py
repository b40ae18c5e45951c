"""Earshot's dashboard: the player, playlists, monitoring, the library map and listening analytics.

    .venv/bin/streamlit run dashboard/app.py --server.address 127.0.0.1

(``./spark-submit.sh demo`` starts it for you.) Every page reads live data and
says plainly when the broker, the database or an index is missing, then
recovers on its own when they are back.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # streamlit runs this file as a script: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import streamlit as st  # noqa: E402

from dashboard import pages  # noqa: E402

st.set_page_config(page_title="Earshot", page_icon=":material/headphones:", layout="wide")
navigation = st.navigation(
    [
        st.Page(pages.player, title="Player", icon=":material/headphones:", url_path="player", default=True),
        st.Page(pages.playlists, title="Playlists", icon=":material/queue_music:", url_path="playlists"),
        st.Page(pages.monitoring, title="Monitoring", icon=":material/monitoring:", url_path="monitoring"),
        st.Page(pages.library_map, title="Library map", icon=":material/scatter_plot:", url_path="map"),
        st.Page(pages.analytics, title="Analytics", icon=":material/bar_chart:", url_path="analytics"),
    ]
)
navigation.run()
