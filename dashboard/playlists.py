"""The playlists page: make one from a mood, a track or your taste, save and edit it, play it through, share it.

Playing a playlist sends the usual listening events: ``play`` when a track
starts, ``complete`` when it has played to its end (the page advances by
itself: it knows each track's length from its audio), ``skip`` when the
listener presses Next before the end. Share links carry ids only
(``/playlists?playlist=<id>``, ``/player?track=<id>``, ``/player?radio=<id>``)
and sending one is a ``share`` event on Kafka.
"""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from connectors import playlists as store
from dashboard import common, data
from dashboard.common import listener, listening_page
from recommend.items import items_of
from recommend.playlist import AXES, PlaylistError, from_mood, from_recommendations, from_seed

SOURCES = ("a mood", "a track", "my taste")


def playlists() -> None:
    services = listening_page("Playlists")
    if services is None:
        return
    s, db, index = services
    user = listener(db, "playlists")
    said = st.session_state.pop("pl_said", None)  # what a button's callback had to say
    if said:
        st.warning(said)
    shared = st.query_params.get("playlist")
    if shared:
        _shared(s, db, index, user, shared)
    _playing(s, db, index, user)
    left, right = st.columns(2)
    with left:
        _make(db, index, user)
    with right:
        _mine(s, db, index, user)


def table(index, track_ids: list[int]) -> pd.DataFrame:
    rows = []
    for place, t in enumerate(track_ids, start=1):
        track = index.catalogue.get(int(t))
        rows.append(
            {
                "#": place,
                "title": track.title if track else f"track {t}",
                "artist": track.artist if track else None,
                "genre": track.genre if track else None,
            }
        )
    return pd.DataFrame(rows, columns=["#", "title", "artist", "genre"])


# ------------------------------------------------------------ make


def _make(db, index, user: str) -> None:
    st.subheader("Make a playlist")
    source = st.radio("Make a playlist from", SOURCES, horizontal=True, key="pl_source")
    length = st.slider("Tracks", 5, 50, 15, key="pl_length")
    artist_of = index.catalogue.artist_of()
    try:
        if source == "a mood":
            mood = {a: st.slider(a.capitalize(), -1.0, 1.0, 0.0, 0.25, key=f"mood_{a}") for a in AXES}
            moods = common.mood_table(db, index)
            usable = {a: v for a, v in mood.items() if a in moods and moods[a].notna().any()}
            make = lambda: from_mood(index, moods, usable, length=length, artist_of=artist_of)  # noqa: E731
            about = {"kind": "mood", "mood": usable}
        elif source == "a track":
            frame = common.catalogue_frame(index)
            found = data.search(frame, st.text_input("Find the first track", key="pl_search")).head(50)
            labels = {int(r.track_id): f"{r.title} — {r.artist} [{r.genre}]" for r in found.itertuples()}
            seed = st.selectbox("First track", list(labels), format_func=labels.get, key="pl_seed")
            make = lambda: from_seed(index, int(seed), length=length, artist_of=artist_of)  # noqa: E731
            about = {"kind": "seed", "track_id": int(seed) if seed is not None else None}
        else:
            doc = db["recommendations"].find_one({"_id": user}, {"items": 1}) or {}
            served = [i["track_id"] for i in items_of(doc.get("items"))]
            make = lambda: from_recommendations(index, served, length=length, artist_of=artist_of)  # noqa: E731
            about = {"kind": "taste"}
        if st.button("Generate", key="pl_generate", type="primary"):
            st.session_state["draft"] = {"tracks": make(), "source": about}
    except PlaylistError as exc:
        st.warning(str(exc))
    draft = st.session_state.get("draft")
    if not draft:
        st.caption("Choose where to start, then Generate.")
        return
    st.dataframe(table(index, draft["tracks"]), hide_index=True, key="pl_draft", height=240)
    st.text_input("Playlist name", key="pl_name", placeholder="Sunday morning")
    st.button("Save playlist", key="pl_save", on_click=_save, args=(db, user))


def _save(db, user: str) -> None:
    """Save the draft under the name typed (a button's callback: it runs before the page is drawn again)."""
    draft, name = st.session_state["draft"], st.session_state.get("pl_name", "")
    try:
        pid = store.create(db, owner=user, name=name, track_ids=draft["tracks"], source=draft["source"])
    except store.PlaylistStoreError as exc:
        st.session_state["pl_said"] = str(exc)
        return
    st.session_state["open_playlist"] = pid
    st.session_state.pop("draft")
    st.toast(f"saved '{name.strip()}'")


# ------------------------------------------------------------ yours


def _mine(s, db, index, user: str) -> None:
    st.subheader("Your playlists")
    mine = {d["_id"]: d for d in store.list_for(db, user)}
    if not mine:
        st.caption("none yet: make one and save it")
        return
    ids = list(mine)
    opened = st.session_state.get("open_playlist")
    pid = st.selectbox(
        "Open playlist",
        ids,
        index=ids.index(opened) if opened in mine else 0,
        format_func=lambda i: f"{mine[i]['name']} ({len(mine[i]['track_ids'])} tracks)",
        key=f"pl_open_{opened}",
    )
    doc = mine[pid]
    st.dataframe(table(index, doc["track_ids"]), hide_index=True, key="pl_tracks", height=240)
    c = st.columns(3)
    c[0].button("Play playlist", key="pl_play", type="primary", on_click=_start, args=(s, user, doc))
    link = data.share_url(st.context.url, "playlists", "playlist", pid)
    share = (s, user, int(doc["track_ids"][0]), f"playlist:{pid}", link)
    c[1].button("Share playlist", key="pl_share", on_click=_share, args=share)

    def position() -> int:
        return int(st.session_state.get(f"pl_pos_{pid}", 1)) - 1

    def delete() -> None:
        store.delete(db, pid, owner=user)

    def rename() -> None:
        store.rename(db, pid, owner=user, name=st.session_state.get(f"pl_rename_{pid}", ""))

    def move(by: int) -> None:
        store.move(db, pid, owner=user, position=position(), by=by)

    def take_out() -> None:
        at = position()
        store.reorder(db, pid, owner=user, track_ids=doc["track_ids"][:at] + doc["track_ids"][at + 1 :])

    c[2].button("Delete playlist", key="pl_delete", on_click=_edit, args=(delete, f"deleted '{doc['name']}'", None))
    with st.expander("Edit"):
        st.text_input("New name", value=doc["name"], key=f"pl_rename_{pid}")
        st.button("Rename", key="pl_rename_go", on_click=_edit, args=(rename, "renamed", pid))
        st.number_input("Track #", 1, len(doc["track_ids"]), 1, key=f"pl_pos_{pid}")
        e = st.columns(3)
        for col, (label, by) in zip(e, (("Move up", -1), ("Move down", 1)), strict=False):
            col.button(label, key=f"pl_move_{by}", on_click=_edit, args=(lambda by=by: move(by), "moved", pid))
        e[2].button("Take out", key="pl_take_out", on_click=_edit, args=(take_out, "taken out", pid))


def _edit(change, done: str, opened: str | None) -> None:
    """A button's callback: make the change, or say why not."""
    st.session_state["open_playlist"] = opened  # the change may open another (a copy)
    try:
        change()
    except store.PlaylistStoreError as exc:
        st.session_state["pl_said"] = str(exc)
        return
    st.toast(done)


def _shared(s, db, index, user: str, pid: str) -> None:
    doc = store.get(db, pid)
    if doc is None:
        st.warning(f"the shared playlist {pid!r} is not there any more")
        return
    st.subheader(f"Shared with you: '{doc['name']}' by {doc.get('owner') or 'the library'}")
    st.dataframe(table(index, doc["track_ids"]), hide_index=True, key="pl_shared", height=200)
    c = st.columns(2)
    c[0].button("Play shared playlist", key="pl_play_shared", type="primary", on_click=_start, args=(s, user, doc))

    def copy() -> None:
        source = {"kind": "copy", "playlist": pid, "owner": doc.get("owner")}
        mine = store.create(db, owner=user, name=doc["name"], track_ids=doc["track_ids"], source=source)
        st.session_state["open_playlist"] = mine

    c[1].button("Save a copy", key="pl_copy", on_click=_edit, args=(copy, f"saved a copy of '{doc['name']}'", None))


def _share(s, user: str, track_id: int, shared: str, link: str) -> None:
    sent = data.send_event(s, user, track_id, "share", shared=shared)
    (st.toast if sent.ok else st.error)(sent.message)
    st.session_state["share_link"] = link


# ------------------------------------------------------------ playing


def _start(s, user: str, doc: dict) -> None:
    st.session_state["queue"] = {
        "id": doc["_id"],
        "name": doc["name"],
        "tracks": list(doc["track_ids"]),
        "at": -1,
        "context": f"playlist:{doc['_id']}",
    }
    _next(s, user, finished=False)


def _next(s, user: str, *, finished: bool) -> None:
    """End the current track (complete when it played out, skip when cut short) and start the next one."""
    q = st.session_state["queue"]
    if q["at"] >= 0:
        heard_ms = int((time.time() - q["started"]) * 1000)
        data.send_event(
            s,
            user,
            q["tracks"][q["at"]],
            "complete" if finished else "skip",
            position_ms=heard_ms,
            context=q["context"],
        )
    q["at"] += 1
    if q["at"] >= len(q["tracks"]):
        st.session_state.pop("queue")
        st.toast(f"'{q['name']}' has ended")
        return
    q["started"], q["length_s"] = time.time(), None
    sent = data.send_event(s, user, q["tracks"][q["at"]], "play", position_ms=0, context=q["context"])
    (st.toast if sent.ok else st.error)(sent.message)


def _playing(s, db, index, user: str) -> None:
    link = st.session_state.get("share_link")
    if link:
        st.caption("Share link (ids only; it opens the player for whoever has it):")
        st.code(link, language=None)
    q = st.session_state.get("queue")
    if not q:
        return
    track = q["tracks"][q["at"]]
    meta = index.catalogue.get(int(track))
    title = f"{meta.title} — {meta.artist}" if meta else f"track {track}"
    st.subheader(f"Playing '{q['name']}', {q['at'] + 1} of {len(q['tracks'])}: {title}")
    try:
        audio, mime = data.audio_for(db, s, track)
        if q["length_s"] is None:
            q["length_s"] = data.duration_s(audio)
        st.audio(audio, format=mime, autoplay=True)
    except data.AudioRefused as exc:
        st.warning(str(exc))
    c = st.columns(3)
    c[0].button("Next track", key="pl_next", on_click=_next, args=(s, user), kwargs={"finished": False})
    if c[1].button("Like", key="pl_like"):
        sent = data.send_event(s, user, track, "like", context=q["context"])
        (st.toast if sent.ok else st.error)(sent.message)
    c[2].button("Stop playing", key="pl_stop", on_click=lambda: st.session_state.pop("queue", None))

    @st.fragment(run_every=1.0)
    def clock() -> None:
        """Advance when the track has played to its end (a complete event), as a player app would."""
        now = st.session_state.get("queue")
        if now is q and q["length_s"] and time.time() - q["started"] >= q["length_s"]:
            _next(s, user, finished=True)
            st.rerun(scope="app")

    clock()
