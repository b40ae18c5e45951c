"""The dashboard's pages, one function each (``dashboard/app.py`` puts them in the navigation)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from dashboard import data
from index.radio import radio
from index.recommend import items_of

SHOWN = 50  # search results listed at once
EVENT_BUTTONS = (("Like", "like"), ("Dislike", "dislike"), ("Skip", "skip"), ("Finished", "complete"))


@st.cache_resource(show_spinner=False)
def _client(uri: str):
    from pymongo import MongoClient

    return MongoClient(uri, serverSelectionTimeoutMS=1500, socketTimeoutMS=5000, tz_aware=True)


def _db(s):
    """The database, or None after saying plainly that it is down."""
    try:
        data.mongo_db(s)[0].close()  # reachability, with a clear sentence when it fails
        return _client(s.mongo.uri)[s.mongo.database]
    except data.Unavailable as exc:
        st.error(str(exc))
        return None


def _index(s):
    try:
        return data.open_index(s)
    except data.Unavailable as exc:
        st.warning(str(exc))
        return None


# ------------------------------------------------------------ player


def player() -> None:
    s = data.settings()
    st.title("Earshot")
    db = _db(s)
    index = _index(s)
    if db is None or index is None:
        return
    if not data.kafka_up(s):
        st.warning(f"The broker at {s.kafka.bootstrap_servers} does not answer: your actions cannot be sent just now.")
    frame = data.catalogue_frame(index)

    with st.sidebar:
        st.subheader("Listener")
        known = sorted(d["_id"] for d in db["recommendations"].find({}, {"_id": 1}).limit(500))
        new_name = st.text_input("New listener", key="new_listener", placeholder="your name")
        choices = sorted(set(known) | ({new_name.strip()} if new_name.strip() else set()) | {"me"})
        default = choices.index(new_name.strip()) if new_name.strip() in choices else choices.index("me")
        user = st.selectbox("Listening as", choices, index=default, key="listener")
        st.subheader("Steering")
        weights = {
            name: st.slider(name.capitalize(), -1.0, 1.0, 0.0, 0.25, key=f"steer_{name}") for name in data.STEERING
        }

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
                _start(s, user, int(choice))
        _now_playing(s, db, index, frame, user)
    with right:
        _for_you(s, db, index, user, weights)


def _start(s, user: str, track: int) -> None:
    st.session_state["track"] = track
    st.session_state["seek"] = 0
    sent = data.send_event(s, user, track, "play", position_ms=0)
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
            sent = data.send_event(s, user, track, kind, position_ms=int(st.session_state.get("seek", 0)) * 1000)
            (st.toast if sent.ok else st.error)(sent.message)
            st.session_state["last_action"] = kind
    with st.expander("Song radio from this track"):
        if track in index:
            station = radio(index, track, length=10, artist_of=index.catalogue.artist_of())
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
            _start(s, user, int(pick))
            st.rerun()


# ------------------------------------------------------------ monitoring


def monitoring() -> None:
    s = data.settings()
    st.title("Pipeline")
    db = _db(s)
    health = st.columns(3)
    health[0].metric("Broker", "up" if data.kafka_up(s) else "DOWN", s.kafka.bootstrap_servers)
    health[1].metric("Database", "up" if db is not None else "DOWN", s.mongo.database)
    batches = pd.DataFrame(list(db["stream_batches"].find().sort("at", -1).limit(300))) if db is not None else None
    if batches is None or batches.empty:
        health[2].metric("Stream", "no batches yet")
    else:
        age = (datetime.now(UTC) - batches["at"].max().to_pydatetime()).total_seconds()
        health[2].metric("Stream", "running" if age < data.STREAM_FRESH_S else "idle", f"last batch {age:.0f} s ago")
        _batch_charts(batches)
    st.subheader("Index versions")
    versions = data.index_versions(s)
    st.dataframe(pd.DataFrame(versions), hide_index=True) if versions else st.caption("no index published yet")
    st.subheader("Extraction")
    cols = st.columns(2)
    for col, table in zip(cols, ("features", "extract_errors"), strict=True):
        try:
            frame = data.read_delta(s, table)
            col.metric(table, len(frame))
            if table == "extract_errors" and len(frame):
                col.dataframe(frame.drop(columns=[c for c in frame.columns if c == "content_hash"]), hide_index=True)
        except data.Unavailable as exc:
            col.caption(str(exc))
    _last_check(db)


def _last_check(db) -> None:
    """The last ``./spark-submit.sh check``: does Mongo hold what Delta holds?"""
    st.subheader("Lake and serving store")
    found = db["pipeline_checks"].find_one({"_id": "tracks"}) if db is not None else None
    if not found:
        st.caption("never checked: ./spark-submit.sh check compares Delta with Mongo (--repair fixes Mongo)")
        return
    verdict = "agree" if found["differences"] == 0 else f"{found['differences']} differences"
    st.metric("Delta and Mongo tracks", verdict, f"checked {found['at']:%Y-%m-%d %H:%M} UTC", delta_color="off")
    st.dataframe(
        pd.DataFrame(
            [
                {"kind": k, "count": found[k], "examples": ", ".join(map(str, found["examples"][k]))}
                for k in ("missing", "extra", "field", "features")
            ]
        ),
        hide_index=True,
    )
    if found.get("repaired"):
        st.caption(f"the last check repaired {found['repaired']} documents from Delta")


def _batch_charts(batches: pd.DataFrame) -> None:
    b = batches.sort_values("at").copy()
    for column in ("duration_ms", "offsets_behind", "latency_ms", "input_rows_per_s", "processed_rows_per_s", "dlq"):
        if column not in b:  # Spark's progress of the newest batches is stored a moment later
            b[column] = None

    def field(column: str, key: str) -> list:
        return [d.get(key) if isinstance(d, dict) else None for d in b[column]]

    b["batch_ms"] = field("duration_ms", "triggerExecution")
    b["offsets_behind_max"] = field("offsets_behind", "maxOffsetsBehindLatest")
    b["p50_ms"] = field("latency_ms", "p50")
    b["p99_ms"] = field("latency_ms", "p99")
    b = b.set_index("at")
    st.subheader("Micro-batches")
    c1, c2 = st.columns(2)
    c1.caption("rows per second")
    c1.line_chart(b[["input_rows_per_s", "processed_rows_per_s"]])
    c2.caption("batch duration and event → recommendation latency (ms)")
    c2.line_chart(b[["batch_ms", "p50_ms", "p99_ms"]])
    c3, c4 = st.columns(2)
    c3.caption("offsets behind the latest, dead letters")
    c3.line_chart(b[["offsets_behind_max", "dlq"]])
    lists = batches["latency_sample_ms"] if "latency_sample_ms" in batches else []
    samples = np.concatenate([np.asarray(x, float) for x in lists if isinstance(x, list) and x] or [[]])
    c4.caption(f"freshness distribution ({len(samples)} events)")
    if len(samples):
        hist, edges = np.histogram(samples / 1000, bins=20)
        c4.bar_chart(pd.DataFrame({"events": hist}, index=[f"{e:.1f}s" for e in edges[:-1]]))


# ------------------------------------------------------------ library map


def library_map() -> None:
    s = data.settings()
    st.title("Library map")
    index = _index(s)
    if index is None:
        return
    points = data.library_map(index)
    st.caption(f"{len(points)} tracks on the first two principal axes of the index space, coloured by genre")
    pick = alt.selection_point(fields=["track_id"], name="pick")
    chart = (
        alt.Chart(points)
        .mark_circle(size=40)
        .encode(x="x", y="y", color="genre", tooltip=["track_id", "title", "artist", "genre"])
        .add_params(pick)
    )
    event = st.altair_chart(chart, key="map", on_select="rerun", use_container_width=True)
    chosen = (event.selection.get("pick") or [{}])[0].get("track_id") if event else None
    if chosen is None:
        chosen_label = st.selectbox(
            "…or choose a track", [""] + points["track_id"].astype(str).tolist(), key="map_pick"
        )
        chosen = int(chosen_label) if chosen_label else None
    if chosen is not None:
        st.session_state["track"] = int(chosen)
        db = _db(s)
        if db is not None:
            try:
                audio, mime = data.audio_for(db, s, int(chosen))
                st.audio(audio, format=mime)
            except data.AudioRefused as exc:
                st.warning(str(exc))


# ------------------------------------------------------------ analytics


def analytics() -> None:
    s = data.settings()
    st.title("Listening")
    try:
        events = data.read_delta(s, "events")
    except data.Unavailable as exc:
        st.info(f"{exc}: the stream archives events there as they arrive.")
        return
    if events.empty:
        st.info("no events archived yet")
        return
    events["ts"] = pd.to_datetime(events["ts"], utc=True)
    now = datetime.now(UTC)
    c = st.columns(3)
    c[0].metric("events", len(events))
    c[1].metric("listeners, last hour", events[events["ts"] > now - timedelta(hours=1)]["user_id"].nunique())
    c[2].metric("listeners, last day", events[events["ts"] > now - timedelta(days=1)]["user_id"].nunique())
    left, right = st.columns(2)
    plays = events[events["type"] == "play"]
    left.caption("plays by hour of day (UTC)")
    left.bar_chart(plays.groupby(plays["ts"].dt.hour).size().reindex(range(24), fill_value=0))
    by_genre = events.pivot_table(index="genre", columns="type", values="event_id", aggfunc="count", fill_value=0)
    started = by_genre.get("play", pd.Series(0, index=by_genre.index)).clip(lower=1)
    right.caption("skip rate by genre")
    right.bar_chart((by_genre.get("skip", 0) / started).rename("skip rate"))
    st.caption("top tracks (finished + liked)")
    liked = events[events["type"].isin(["complete", "like"])]
    top = liked.groupby("track_id").size().sort_values(ascending=False).head(15).rename("finished or liked")
    st.dataframe(top.reset_index(), hide_index=True, key="top_tracks")
