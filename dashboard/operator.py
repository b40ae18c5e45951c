"""The operator's pages: monitoring the pipeline and the library map."""

from __future__ import annotations

from datetime import UTC, datetime

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from connectors.mongo_io import ARCHIVE_BATCHES, RECOMMENDER_BATCHES
from dashboard import common, data
from dashboard.common import database, index_or_none

# ------------------------------------------------------------ monitoring


def monitoring() -> None:
    s = data.settings()
    st.title("Pipeline")
    db = database(s)
    health = st.columns(3)
    health[0].metric("Broker", "up" if data.kafka_up(s) else "DOWN", s.kafka.bootstrap_servers)
    health[1].metric("Database", "up" if db is not None else "DOWN", s.mongo.database)
    batches = _batches(db, RECOMMENDER_BATCHES)
    if batches is None or batches.empty:
        health[2].metric("Stream", "no batches yet")
    else:
        age = (datetime.now(UTC) - batches["at"].max().to_pydatetime()).total_seconds()
        health[2].metric("Stream", "running" if age < data.STREAM_FRESH_S else "idle", f"last batch {age:.0f} s ago")
        _batch_charts(batches)
    _archive(_batches(db, ARCHIVE_BATCHES))
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


def _batches(db, which: dict) -> pd.DataFrame | None:
    return pd.DataFrame(list(db["stream_batches"].find(which).sort("at", -1).limit(300))) if db is not None else None


def _archive(batches: pd.DataFrame | None) -> None:
    """The events archive's accounting: every message read is archived, rejected (with why) or a duplicate."""
    st.subheader("Events archive (Delta `events`)")
    if batches is None or batches.empty:
        st.caption("no archive batches yet")
        return
    cols = st.columns(4)
    for col, key in zip(cols, ("input_rows", "archived", "rejected", "duplicates"), strict=True):
        col.metric(key.replace("_", " "), int(batches[key].sum()), help="over the last 300 archive batches")
    reasons = pd.DataFrame([r for rs in batches["rejected_by_reason"] for r in (rs or [])])
    if not reasons.empty:
        st.dataframe(reasons.groupby("reason", as_index=False)["count"].sum(), hide_index=True)


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
    index = index_or_none(s)
    if index is None:
        return
    points = common.library_map(index)
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
        db = database(s)
        if db is not None:
            try:
                audio, mime = data.audio_for(db, s, int(chosen))
                st.audio(audio, format=mime)
            except data.AudioRefused as exc:
                st.warning(str(exc))
