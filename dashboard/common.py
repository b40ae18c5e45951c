"""What every dashboard page shares: the cached database client and index, each saying plainly when it is down."""

from __future__ import annotations

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
        return data.open_index(s)
    except data.Unavailable as exc:
        st.warning(str(exc))
        return None


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
