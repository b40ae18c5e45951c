"""The player page: search, play, the listening buttons that send events, and "For you" updating live."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import common, data
from dashboard.common import listener, listening_page
from recommend.items import items_of

SHOWN = 50  # search results listed at once
EVENT_BUTTONS = (("Like", "like"), ("Dislike", "dislike"), ("Skip", "skip"), ("Finished", "complete"))


def player() -> None:
    services = listening_page("Earshot")
    if services is None:
        return
    s, db, index = services
    frame = common.catalogue_frame(index)
    _open_link(index)

    user = listener(db, "player")
    with st.sidebar:
        st.subheader("Steering")
        weights = {
            name: st.slider(name.capitalize(), -1.0, 1.0, 0.0, 0.25, key=f"steer_{name}") for name in data.STEERING
        }
        _import_history(s, user)

    left, right = st.columns([3, 2])
    with left:
        query = st.text_input("Search title, artist or genre", key="search")
        matches = data.search(frame, query)
        results = matches.head(SHOWN)
        st.caption(
            f"{len(matches)} matches of {len(frame)} tracks"
            + (f", first {SHOWN} shown" if len(matches) > SHOWN else "")
        )
        st.dataframe(results, key="results", hide_index=True, height=220)
        labels = {int(r.track_id): f"{r.title} — {r.artist} [{r.genre}]" for r in results.itertuples()}
        if labels:
            choice = st.selectbox("Track", list(labels), format_func=labels.get, key="choice")
            if st.button("Play", key="play_selected", type="primary"):
                _start(s, user, int(choice), "search")
        _now_playing(s, db, index, frame, user)
    with right:
        _for_you(s, db, index, user, weights)


def _import_history(s, user: str) -> None:
    """Upload a ListenBrainz or Last.fm export: import-history matches it, archives it and warms the taste."""
    with st.expander("Import your history"):
        upload = st.file_uploader("A ListenBrainz export (zip or JSON) or a Last.fm CSV or JSON",
                                  type=["zip", "json", "jsonl", "csv"], key="history_file")  # fmt: skip
        if upload is not None and st.button("Import", key="history_import"):
            with st.spinner("matching your history to this library (a Spark job: a minute or so)"):
                result = data.import_history(s, user, upload.name, upload.getvalue())
            (st.success if result.ok else st.error)(result.message)


def _open_link(index) -> None:
    """A share link (``?track=ID`` or ``?radio=ID``) opens the player on its track, once per link."""
    for key in ("track", "radio"):
        value = st.query_params.get(key, "")
        if value.isdigit() and int(value) in index and st.session_state.get("opened_link") != (key, value):
            st.session_state["opened_link"] = (key, value)
            st.session_state["track"] = int(value)
            st.session_state["seek"] = 0
            st.session_state["context"] = "link"
            st.info(f"Opened from a share link: {'the song radio of ' if key == 'radio' else ''}track {value}.")


def _share(s, user: str, track: int, shared: str) -> None:
    key = "radio" if shared == "radio" else "track"
    sent = data.send_event(s, user, track, "share", shared=shared)
    (st.toast if sent.ok else st.error)(sent.message)
    st.session_state["share_link"] = data.share_url(st.context.url, "player", key, track)


def _start(s, user: str, track: int, context: str) -> None:
    st.session_state["track"] = track
    st.session_state["seek"] = 0
    st.session_state["context"] = context  # where it was found: every event of this play says so
    sent = data.send_event(s, user, track, "play", position_ms=0, context=context)
    (st.toast if sent.ok else st.error)(sent.message)


def _now_playing(s, db, index, frame: pd.DataFrame, user: str) -> None:
    track = st.session_state.get("track")
    if track is None:
        st.info("Pick a track to play: search, then select a row.")
        return
    row = frame[frame["track_id"] == track]
    title = f"{row.iloc[0]['title']} — {row.iloc[0]['artist']} [{row.iloc[0]['genre']}]" if len(row) else str(track)
    st.subheader(f"Now playing: {title}")
    try:
        audio, mime = data.audio_for(db, s, track)
        seek = st.slider("Seek (s)", 0, 30, key="seek")
        st.audio(audio, format=mime, start_time=seek, autoplay=True)
    except data.AudioRefused as exc:
        st.warning(str(exc))
    cols = st.columns(len(EVENT_BUTTONS))
    for col, (label, kind) in zip(cols, EVENT_BUTTONS, strict=True):
        if col.button(label, key=f"event_{kind}"):
            position = int(st.session_state.get("seek", 0)) * 1000
            sent = data.send_event(s, user, track, kind, position_ms=position, context=st.session_state.get("context"))
            (st.toast if sent.ok else st.error)(sent.message)
            st.session_state["last_action"] = kind
    share = st.columns(2)
    if share[0].button("Share track", key="share_track"):
        _share(s, user, track, "track")
    if share[1].button("Share its radio", key="share_radio"):
        _share(s, user, track, "radio")
    if st.session_state.get("share_link"):
        st.code(st.session_state["share_link"], language=None)
    opened_radio = st.session_state.get("opened_link") == ("radio", str(track))
    with st.expander("Song radio from this track", expanded=opened_radio):
        if track in index:
            (station,) = index.radio([track], length=10)
            st.dataframe(
                pd.DataFrame([{"track_id": n.track_id, **_meta(index, n.track_id), "why": n.reason} for n in station]),
                hide_index=True,
                key="radio",
            )
        else:
            st.caption("This track has no features yet, so it has no radio.")


def _meta(index, track_id: int) -> dict:
    t = index.catalogue.get(track_id)
    return {"title": t.title, "artist": t.artist, "genre": t.genre} if t else {}


def _for_you(s, db, index, user: str, weights: dict) -> None:
    @st.fragment(run_every=1.0)
    def panel() -> None:
        st.subheader("For you")
        try:
            doc = db["recommendations"].find_one({"_id": user})
        except Exception as exc:  # noqa: BLE001 - the page says so and tries again next second
            st.error(f"the database did not answer: {exc}")
            return
        st.caption(data.freshness_line(doc))
        if not doc:
            return
        items = data.steer(data.with_titles(items_of(doc.get("items")), index), index, weights)
        table = pd.DataFrame(items)[["track_id", "title", "artist", "genre", "score", "reason"]]
        st.dataframe(table, key="for_you", hide_index=True, height=420)

    panel()
    doc_items = {}
    try:
        doc = db["recommendations"].find_one({"_id": user}, {"items": 1})
        doc_items = {
            i["track_id"]: f"{i['title']} — {i['artist']} [{i['genre']}]"
            for i in data.with_titles(items_of((doc or {}).get("items")), index)
        }
    except Exception:  # noqa: BLE001, S110 - the panel above already says the database is down
        pass
    if doc_items:
        pick = st.selectbox("Play from For you", list(doc_items), format_func=doc_items.get, key="for_you_pick")
        if st.button("Play this", key="play_for_you"):
            _start(s, user, int(pick), "for-you")
            st.rerun()
