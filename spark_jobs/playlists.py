"""playlists: a generated mix for every listener of the events archive, in Mongo ``playlists``.

Reads Delta ``events`` (the stream's archive of valid events), groups them by
listener on the executors (``applyInPandas``), folds each listener's events in
event-time order into a taste with the stream's own model
(:func:`recommend.fold.fold_listener`, ``stream.half_life_hours``), and makes a
playlist of ``--length`` tracks from it (:func:`recommend.playlist.from_taste`:
their recommendations, ordered to flow, no artist twice in a row). Each
executor process opens the published index once. The driver writes one
document per listener, ``_id`` ``mix:<user id>``, owner the listener, name
"Your mix", replacing the last run's (:func:`connectors.playlists.mix_document`);
client apps read it by ``_id`` or by ``owner``. A listener whose archived events
are all of tracks the current index lacks gets no mix and is counted. Prints
what it wrote.
"""

from __future__ import annotations

import argparse
import logging
from datetime import UTC, datetime

import pandas as pd
from pyspark.sql import functions as F
from pyspark.sql import types as T

from conf.errors import JobInputError
from conf.settings import Settings
from connectors import delta_io, mongo_io
from connectors.playlists import COLLECTION, mix_document
from connectors.services import require_mongo
from spark_jobs.session import build_spark

log = logging.getLogger("earshot.playlists")
MIXES = T.StructType(
    [
        T.StructField("user_id", T.StringType()),
        T.StructField("track_ids", T.ArrayType(T.LongType())),
        T.StructField("events", T.LongType()),
        T.StructField("index_version", T.StringType()),
    ]
)
WRITE_CHUNK = 1000
NONE = pd.DataFrame(columns=MIXES.fieldNames())  # a listener without a mix


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--length", type=int, default=20, help="tracks per mix (1-200, default 20)")


def mixes(index_root: str, *, length: int, half_life_ms: float):
    """applyInPandas function: one listener's archived events -> their mix (no row when they have none)."""

    def run(frame: pd.DataFrame) -> pd.DataFrame:
        from recommend.fold import fold_listener
        from recommend.playlist import PlaylistError, from_taste
        from spark_jobs.streaming.state import current_index

        index = current_index(index_root)  # a worker that can open no version fails the job, saying why
        user = str(frame["user_id"].iloc[0])
        frame = frame.sort_values(["ts", "kafka_partition", "kafka_offset"], kind="stable")
        events = [
            {
                "event_id": e.event_id,
                "type": e.type,
                "track_id": int(e.track_id),
                "ts_ms": int(pd.Timestamp(e.ts).timestamp() * 1000),
                "kafka_offset": int(e.kafka_offset) if pd.notna(e.kafka_offset) else 0,
                "genre": index.catalogue.get(int(e.track_id)).genre,
            }
            for e in frame.itertuples()
            if int(e.track_id) in index.catalogue
        ]
        if not events:
            return NONE
        taste = fold_listener(user, None, events, index, half_life_ms=half_life_ms).taste
        try:
            tracks = from_taste(index, taste, length=length, artist_of=index.catalogue.artist_of())
        except PlaylistError:
            return NONE
        mix = {"user_id": user, "track_ids": tracks, "events": len(events), "index_version": index.version}
        return pd.DataFrame([mix], columns=MIXES.fieldNames())

    return run


def main(settings: Settings, args: argparse.Namespace) -> int:
    if not 1 <= args.length <= 200:
        raise JobInputError(f"--length must be between 1 and 200, got {args.length}")
    require_mongo(settings)
    spark = build_spark(settings, app_name="playlists")
    location = settings.lake_table("events")
    if not delta_io.table_exists(spark, location):
        raise JobInputError(f"no Delta events at {location} yet: run the stream (its archive writes them)")
    events = delta_io.read_table(spark, location)
    listeners = events.select("user_id").distinct().count()
    half_life_ms = settings.stream.half_life_hours * 3600 * 1000
    made = (
        events.select("user_id", "event_id", "track_id", "type", "ts", "kafka_partition", "kafka_offset")
        .where(F.col("user_id").isNotNull())
        .groupBy("user_id")
        .applyInPandas(mixes(settings.paths.index_root, length=args.length, half_life_ms=half_life_ms), MIXES)
    )
    now = datetime.now(UTC)
    written = 0
    with mongo_io.connect(settings) as client:
        db = mongo_io.database(client, settings)
        chunk: list[dict] = []
        for row in made.toLocalIterator():
            chunk.append(mix_document(row.user_id, row.track_ids, index_version=row.index_version, now=now))
            if len(chunk) >= WRITE_CHUNK:
                written += mongo_io.upsert_many(db, COLLECTION, chunk)
                chunk = []
        written += mongo_io.upsert_many(db, COLLECTION, chunk) if chunk else 0
    print(  # noqa: T201
        f"playlists: wrote {written} mixes of up to {args.length} tracks to Mongo `{COLLECTION}` "
        f"({listeners - written} of {listeners} listeners without one: no archived event of an indexed track)"
    )
    return 0
