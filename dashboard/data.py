"""What the dashboard reads and sends: Mongo, the index, the Delta lake (without Spark), Kafka.

Every function fails soft: a service that does not answer raises
:class:`Unavailable` with a sentence the page shows as it is, and the next
rerun tries again, so the pages recover when the service is back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from conf.settings import Settings, load_settings
from connectors import kafka_io, lake_reader, mongo_io
from connectors.audio import AUDIO_TYPES, AudioRefused, audio_path  # noqa: F401 - the pages' names
from connectors.services import any_reachable, kafka_hosts, mongo_hosts
from index import store
from index.catalogue import folded
from index.reader import Index, IndexError_
from udfs.schema import MOOD_AXES

STREAM_FRESH_S = 60.0  # a stream whose last batch is older than this is shown as idle


class Unavailable(RuntimeError):
    """A service or dataset the page needs is not there; the message says which and what to do."""


def settings() -> Settings:
    return load_settings()


def mongo_db(s: Settings):
    if not any_reachable(mongo_hosts(s.mongo.uri), 0.5):
        raise Unavailable(f"the database at {s.mongo.uri} does not answer; start it with services/local-stack.sh up")
    client = mongo_io.connect_uri(s.mongo.uri, timeout_ms=1500, socket_timeout_ms=5000)
    return client, client[s.mongo.database]


def kafka_up(s: Settings) -> bool:
    return any_reachable(kafka_hosts(s.kafka.bootstrap_servers), 0.5)


def published_version(s: Settings) -> str:
    """The published index version's name (read every rerun: a new build-index shows at the next one)."""
    try:
        return store.current_version(Path(s.paths.index_root))
    except IndexError_ as exc:
        raise Unavailable(f"{exc}; run ./spark-submit.sh build-index") from None


def open_index(root: str, version: str) -> Index:
    try:
        return Index.open(root, version)
    except IndexError_ as exc:
        raise Unavailable(f"{exc}; run ./spark-submit.sh build-index") from None


def index_versions(s: Settings) -> list[dict]:
    root = Path(s.paths.index_root)
    try:
        current = store.resolve(root).name
    except IndexError_:
        current = None
    rows = []
    for version in store.versions(root):
        try:
            m = Index(root / version).manifest
            rows.append(
                {
                    "version": version,
                    "current": version == current,
                    "tracks": m.count,
                    "dims": m.dims,
                    "shards": len(m.shards),
                    "created_at": m.created_at,
                }
            )
        except IndexError_ as exc:
            rows.append({"version": version, "current": False, "error": str(exc)})
    return rows


# ------------------------------------------------------------ catalogue and audio


def catalogue_frame(index: Index) -> pd.DataFrame:
    rows = [(t.track_id, t.title, t.artist, t.genre) for t in index.catalogue.tracks.values()]
    return pd.DataFrame(rows, columns=["track_id", "title", "artist", "genre"]).sort_values("track_id")


def search(frame: pd.DataFrame, text: str) -> pd.DataFrame:
    """Tracks whose title, artist or genre contains every word of ``text``, without case or accents ("bjork" finds
    Björk: :func:`index.catalogue.folded`, as the player apps' search)."""
    if not text.strip():
        return frame
    hay = (frame["title"] + " " + frame["artist"] + " " + frame["genre"]).map(folded)
    mask = np.ones(len(frame), dtype=bool)
    for word in folded(text).split():
        mask &= hay.str.contains(word, regex=False).to_numpy()
    return frame[mask]


def audio_for(db, s: Settings, track_id: object) -> tuple[bytes, str]:
    """The audio of a catalogued track, by id only: its bytes and MIME type (``connectors.audio``'s rules)."""
    path, mime = audio_path(db, s, track_id)
    return path.read_bytes(), mime


def duration_s(audio: bytes) -> float | None:
    """A track's length in seconds from its bytes (libsndfile, else the container's tags: .m4a, .wma), or None
    when neither can tell (no auto-advance then)."""
    import io

    import mutagen
    import soundfile

    try:
        return float(soundfile.info(io.BytesIO(audio)).duration)
    except Exception:  # noqa: BLE001 - a format libsndfile does not read: ask mutagen
        pass
    try:
        found = mutagen.File(io.BytesIO(audio))
        length = found.info.length if found is not None and found.info else None
        return float(length) if length else None
    except Exception:  # noqa: BLE001 - neither can tell: the listener presses Next
        return None


# ------------------------------------------------------------ playlists and sharing

def mood_table(db, index: Index) -> pd.DataFrame:
    """Each indexed track's mood axes (:data:`recommend.playlist.AXES`); pages read it once per index version
    (``dashboard.common.mood_table``).

    From the index's own features where its space has them, else from Mongo ``tracks.features``
    (tempo, energy, brightness, noisiness, written by extract).
    """
    from recommend.playlist import AXES, moods_from_index

    table = moods_from_index(index)
    if table is None:
        keys = {f"features.{key}": 1 for _, key in AXES.values()}
        rows = [
            {"track_id": int(d["_id"]), **{a: (d.get("features") or {}).get(key) for a, (_, key) in AXES.items()}}
            for d in db["tracks"].find({"features": {"$exists": True}}, keys)
        ]
        table = pd.DataFrame(rows, columns=["track_id", *AXES])
        table[list(AXES)] = table[list(AXES)].astype(float)
    return table


def share_url(current_url: str | None, page: str, key: str, value: object) -> str:
    """The link that opens ``page`` on one item for another listener: ids only, never paths."""
    from urllib.parse import urlencode, urlsplit

    parts = urlsplit(current_url or "")
    base = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
    return f"{base}/{page}?{urlencode({key: str(value)})}"


# ------------------------------------------------------------ listening


@dataclass
class Sent:
    ok: bool
    message: str


def send_event(
    s: Settings,
    user_id: str,
    track_id: int,
    kind: str,
    position_ms: int | None = None,
    shared: str | None = None,
    context: str | None = None,
) -> Sent:
    from events.producer import ListenProducer, new_event

    if not kafka_up(s):
        return Sent(False, f"the broker at {s.kafka.bootstrap_servers} does not answer; your {kind} was not sent")
    kafka_io.ensure_topic_once(s, s.kafka.listens_topic)
    try:
        with ListenProducer(s.kafka.bootstrap_servers, topic=s.kafka.listens_topic) as producer:
            event = new_event(
                user_id=user_id,
                track_id=int(track_id),
                type=kind,
                position_ms=position_ms,
                client="dashboard",
                shared=shared,
                context=context,
            )
            producer.send(event).get(timeout=5)
    except Exception as exc:  # noqa: BLE001 - the page says what happened and carries on
        return Sent(False, f"could not send your {kind}: {exc}")
    return Sent(True, f"sent {kind} of track {track_id} at {event['ts']}")


TRIGGER_WORDS = {"history": "history import", "complete": "finished track"}
ROOT = Path(__file__).resolve().parents[1]
IMPORT_TIMEOUT_S = 1800


def import_history(s: Settings, user_id: str, name: str, content: bytes) -> Sent:
    """Run ``./spark-submit.sh import-history`` on an uploaded export (kept under the state root's ``uploads``);
    the job's report lines, or why it failed."""
    import subprocess

    folder = Path(s.paths.state_root) / "uploads" / "".join(c if c.isalnum() else "_" for c in user_id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (Path(name).name or "export")
    path.write_bytes(content)
    command = [str(ROOT / "spark-submit.sh"), "import-history", "--user", user_id, str(path)]
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=IMPORT_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return Sent(False, f"the import took longer than {IMPORT_TIMEOUT_S} s; run it by hand: {' '.join(command)}")
    report = run.stdout.split("import-history: ", 1)[-1].splitlines()[1:] if run.returncode == 0 else []
    if run.returncode != 0:
        return Sent(False, "\n".join((run.stderr or run.stdout).strip().splitlines()[-5:]))
    return Sent(True, "\n".join(report))


def freshness_line(doc: dict | None, now: datetime | None = None) -> str:
    """ "updated 0.8 s after your like" (or why there is nothing yet)."""
    if not doc:
        return "no recommendations yet: play, like or finish a track"
    written = doc["written_at"]
    lag = written.timestamp() - doc["trigger_event_ms"] / 1000
    age = ((now or datetime.now(UTC)) - written).total_seconds()
    return (
        f"updated {lag:.1f} s after your {TRIGGER_WORDS.get(doc['trigger_type'], doc['trigger_type'])} · "
        f"{age:.0f} s ago · "
        f"{doc['source']} · index {doc['index_version']}"
    )


# ------------------------------------------------------------ steering


STEERING = {axis: [MOOD_AXES[axis]] for axis in ("tempo", "energy", "brightness")}


def with_titles(items: list[dict], index: Index) -> list[dict]:
    """Recommended items with their title, artist and genre from the index's catalogue (the stream stores ids)."""
    out = []
    for item in items:
        track = index.catalogue.get(int(item["track_id"]))
        out.append(
            {
                **item,
                "title": track.title if track else None,
                "artist": track.artist if track else None,
                "genre": item.get("genre") or (track.genre if track else None),
            }
        )
    return out


def steer(items: list[dict], index: Index, weights: dict[str, float]) -> list[dict]:
    """Re-rank ``items``: each slider (-1..1) favours tracks high (or low) in its feature."""
    if not items or not any(weights.values()):
        return items
    columns = index.manifest.columns
    scored = []
    for rank, item in enumerate(items):
        boost = 0.0
        item_of = index.items([item["track_id"]])
        if item_of[0] >= 0:
            z = index.vectors(item_of)[0]
            for name, w in weights.items():
                cols = [columns.index(c) for c in STEERING[name] if c in columns]
                if cols and w:
                    boost += w * float(np.mean(z[cols]))
        scored.append((-boost + rank * 0.05, rank, item))
    return [item for _, _, item in sorted(scored, key=lambda t: (t[0], t[1]))]


# ------------------------------------------------------------ the map and the lake


def library_map(index: Index) -> pd.DataFrame:
    """Every indexed track at the first two principal axes of the index space."""
    p = index.points(np.arange(len(index)))
    out = pd.DataFrame({"track_id": index.track_ids(), "x": p[:, 0], "y": p[:, 1]})
    cat = catalogue_frame(index)
    return out.merge(cat, on="track_id", how="left")


def read_delta(s: Settings, table: str) -> pd.DataFrame:
    """A Delta table as pandas, with the ``deltalake`` package (no Spark)."""
    try:
        return lake_reader.read_pandas(s.lake_table(table))
    except lake_reader.NoTable:
        raise Unavailable(f"no Delta table {table!r} at {s.lake_table(table)} yet") from None
