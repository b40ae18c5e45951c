"""The analytics page, from Delta ``events`` (read with ``deltalake``, no Spark), and its pure computations.

For an operator: events and listeners, shares, plays by hour, skip rate by
genre, by position in the track and by hour, top tracks and artists by title,
the share of recommended plays that were finished. For a listener: their own
history and how their taste moved over time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.common import index_or_none
from recommend.taste import WEIGHTS

POSITION_EDGES_S = (0, 10, 30, 60, 120, 240, float("inf"))
HISTORY = 50  # a listener's latest events shown


def skip_rate_by_position(events: pd.DataFrame) -> pd.Series:
    """Of the tracks ended (skipped or finished) with a known position, the share skipped, by time into the track."""
    ended = events[events["type"].isin(["skip", "complete"]) & events["position_ms"].notna()]
    labels = [_span(a, b) for a, b in zip(POSITION_EDGES_S, POSITION_EDGES_S[1:], strict=False)]
    span = pd.cut(ended["position_ms"].astype(float) / 1000, POSITION_EDGES_S, right=False, labels=labels)
    rate = (ended["type"] == "skip").groupby(span, observed=False).mean()
    return rate.reindex(labels).rename("skip rate")


def skip_rate_by_hour(events: pd.DataFrame) -> pd.Series:
    """Skips per play started, by hour of day (UTC); hours without plays are 0."""
    hour = events["ts"].dt.hour
    plays = (events["type"] == "play").groupby(hour).sum()
    skips = (events["type"] == "skip").groupby(hour).sum()
    return (skips / plays.where(plays > 0)).reindex(range(24)).fillna(0.0).rename("skip rate")


def top_by_title(events: pd.DataFrame, catalogue, *, n: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Top tracks (title, artist) and artists by plays, with how many were finished and liked."""
    named = _with_titles(events, catalogue)
    counts = named.pivot_table(index=["title", "artist"], columns="type", values="event_id", aggfunc="count")
    counts = counts.reindex(columns=["play", "complete", "like", "share"]).fillna(0).astype(int)
    tracks = counts.sort_values(["play", "complete", "like"], ascending=False).head(n).reset_index()
    artists = counts.groupby(level="artist").sum().sort_values(["play", "complete"], ascending=False).head(n)
    return tracks.rename(columns={"play": "plays"}), artists.reset_index().rename(columns={"play": "plays"})


def recommendations_finished(events: pd.DataFrame) -> tuple[int, float | None]:
    """Plays started from "For you" (``context`` for-you), and the share of them that were finished."""
    if "context" not in events:
        return 0, None
    mine = events[events["context"] == "for-you"]
    plays = mine[mine["type"] == "play"][["user_id", "track_id"]].drop_duplicates()
    if plays.empty:
        return 0, None
    done = mine[mine["type"] == "complete"][["user_id", "track_id"]].drop_duplicates()
    finished = plays.merge(done, on=["user_id", "track_id"], how="inner")
    return len(plays), len(finished) / len(plays)


def taste_over_time(events: pd.DataFrame, user: str, *, genres: int = 5) -> pd.DataFrame:
    """A listener's running score per genre (the taste's weights per event type, undecayed), one row per event."""
    mine = events[events["user_id"] == user].sort_values("ts")
    if mine.empty:
        return pd.DataFrame()
    weight = mine["type"].map(WEIGHTS).fillna(0.0)
    score = pd.crosstab(mine["ts"], mine["genre"].fillna("unknown"), values=weight, aggfunc="sum").fillna(0.0)
    score = score.cumsum()
    top = score.iloc[-1].abs().sort_values(ascending=False).index[:genres]
    return score[top]


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
    c = st.columns(4)
    c[0].metric("events", len(events))
    c[1].metric("listeners, last hour", events[events["ts"] > now - timedelta(hours=1)]["user_id"].nunique())
    c[2].metric("listeners, last day", events[events["ts"] > now - timedelta(days=1)]["user_id"].nunique())
    c[3].metric("shares", int((events["type"] == "share").sum()))
    plays, finished = recommendations_finished(events)
    st.caption(
        f"Recommendations played to the end: {finished:.0%} of {plays} plays started from For you"
        if finished is not None
        else "Recommendations played to the end: no play from For you archived yet"
    )
    left, right = st.columns(2)
    started = events[events["type"] == "play"]
    left.caption("plays by hour of day (UTC)")
    left.bar_chart(started.groupby(started["ts"].dt.hour).size().reindex(range(24), fill_value=0))
    by_genre = events.pivot_table(index="genre", columns="type", values="event_id", aggfunc="count", fill_value=0)
    per_play = by_genre.get("play", pd.Series(0, index=by_genre.index)).clip(lower=1)
    right.caption("skip rate by genre")
    right.bar_chart((by_genre.get("skip", 0) / per_play).rename("skip rate"))
    left, right = st.columns(2)
    left.caption("skip rate by time into the track (of the tracks skipped or finished)")
    left.bar_chart(skip_rate_by_position(events))
    right.caption("skip rate by hour of day (UTC)")
    right.bar_chart(skip_rate_by_hour(events))
    index = index_or_none(s)
    tracks, artists = top_by_title(events, index.catalogue if index is not None else None)
    left, right = st.columns(2)
    left.caption("top tracks")
    left.dataframe(tracks, hide_index=True, key="top_tracks")
    right.caption("top artists")
    right.dataframe(artists, hide_index=True, key="top_artists")
    _listener(events, index)


def _listener(events: pd.DataFrame, index) -> None:
    st.subheader("A listener's history")
    users = sorted(events["user_id"].unique().tolist())
    current = st.session_state.get("user")
    user = st.selectbox("Listener", users, index=users.index(current) if current in users else 0, key="an_user")
    history = _with_titles(events[events["user_id"] == user], index.catalogue if index is not None else None)
    history = history.sort_values("ts", ascending=False).head(HISTORY)
    st.dataframe(history[["ts", "type", "title", "artist", "genre"]], hide_index=True, key="an_history")
    st.caption("their taste over time: the running score of their top genres (like +3, finish +1.5, skip -1, ...)")
    st.line_chart(taste_over_time(events, user))


def _with_titles(events: pd.DataFrame, catalogue) -> pd.DataFrame:
    def field(name: str):
        def get(track_id: int) -> str | None:
            track = catalogue.get(int(track_id)) if catalogue is not None else None
            return getattr(track, name) if track else None

        return get

    out = events.copy()
    out["title"] = out["track_id"].map(field("title")).fillna(out["track_id"].map(lambda t: f"track {t}"))
    out["artist"] = out["track_id"].map(field("artist")).fillna("unknown artist")
    return out


def _span(a: float, b: float) -> str:
    return f"{a:.0f} s+" if b == float("inf") else f"{a:.0f}-{b:.0f} s"
