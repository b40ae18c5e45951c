"""What every dashboard page shares: the cached database client and index, each saying plainly when it is down.

Caches are Streamlit's, kept per process across reruns and sessions: the client per URI, and the index and
what is derived from it (the catalogue frame, the library map, the mood table) per index version, so a
new build-index shows at the next rerun and the old version's entries age out (two kept). Cached frames
are shared: pages read them and never change them in place.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data


@st.cache_resource(show_spinner=False)
def _client(uri: str):
    from connectors.mongo_io import connect_uri

    return connect_uri(uri, timeout_ms=1500, socket_timeout_ms=5000)


def database(s):
    """The database, or None after saying plainly that it is down."""
    try:
        data.mongo_db(s)[0].close()  # reachability, with a clear sentence when it fails
        return _client(s.mongo.uri)[s.mongo.database]
    except data.Unavailable as exc:
        st.error(str(exc))
        return None


def index_or_none(s):
    try:
        return _index(s.paths.index_root, data.published_version(s))
    except data.Unavailable as exc:
        st.warning(str(exc))
        return None


@st.cache_resource(show_spinner=False, max_entries=2)
def _index(root: str, version: str):
    return data.open_index(root, version)


@st.cache_resource(show_spinner=False, max_entries=2)
def _catalogue_frame(folder: str, _index) -> pd.DataFrame:
    return data.catalogue_frame(_index)


@st.cache_resource(show_spinner=False, max_entries=2)
def _library_map(folder: str, _index) -> pd.DataFrame:
    return data.library_map(_index)


@st.cache_resource(show_spinner=False, max_entries=2)
def _mood_table(folder: str, _db, _index) -> pd.DataFrame:
    return data.mood_table(_db, _index)


def catalogue_frame(index) -> pd.DataFrame:
    """Every catalogued track (track_id, title, artist, genre), once per index version."""
    return _catalogue_frame(str(index.folder), index)


def library_map(index) -> pd.DataFrame:
    """Every indexed track at the index space's first two axes, once per index version."""
    return _library_map(str(index.folder), index)


def mood_table(db, index) -> pd.DataFrame:
    """Each indexed track's mood axes (``data.mood_table``), once per index version."""
    return _mood_table(str(index.folder), db, index)


def listener(db, page: str) -> str:
    """The sidebar's listener picker; the choice follows the listener from page to page."""
    with st.sidebar:
        st.subheader("Listener")
        known = sorted(d["_id"] for d in db["recommendations"].find({}, {"_id": 1}).limit(500))
        new_name = st.text_input("New listener", key=f"new_listener_{page}", placeholder="your name").strip()
        current = st.session_state.get("user", "me")
        choices = sorted(set(known) | {current, "me"} | ({new_name} if new_name else set()))
        user = st.selectbox(
            "Listening as", choices, index=choices.index(new_name or current), key=f"listener_{page}_{new_name}"
        )
    st.session_state["user"] = user
    return user


def listening_page(title: str):
    """A page that plays music and sends events: (settings, database, index), or None after saying what is down."""
    s = data.settings()
    st.title(title)
    db = database(s)
    index = index_or_none(s)
    if db is None or index is None:
        return None
    if not data.kafka_up(s):
        st.warning(f"The broker at {s.kafka.bootstrap_servers} does not answer: your actions cannot be sent just now.")
    return s, db, index
