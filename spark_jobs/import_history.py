"""import-history: a listener's history from ListenBrainz or Last.fm exports, matched and archived.

``./spark-submit.sh import-history --user NAME [--format F] FILE...``. Spark reads the files
(``binaryFile``: local paths, or any filesystem the cluster reads) and each is parsed on an
executor (``history.formats``: the format from its content unless ``--format`` names it; a bad line
is a problem with its file and line, and the good lines of the file still count). Each listen is
matched to the catalogue there (``history.match``: recording MBID, ISRC, then normalised artist and
title; the catalogue is read once from Mongo ``tracks`` and broadcast). Matched listens become
events (``history.events``: ids from the listener, kind, time and track) MERGEd into Delta
``events`` with their original times, ``client`` ``import:<format>`` and ``context`` ``history``, so
the analytics show them and a second import of the same file adds nothing. The report (lines read,
listens matched by each rule, unmatched, repeats, the most played of what the library lacks, the
first problems) goes to stdout and to Mongo ``history_imports``.

The listener's live taste: the matched events that Delta ``events`` does not hold yet go to Kafka
``listens`` as history messages (``history.events.history_messages``: a thousand listens each, oldest
first, each message's id a hash of its events) *before* the MERGE, and the running stream folds each
into the listener's taste with the taste's own model (every listen weighed by its age against the
half-life) and rewrites their recommendations: no restart, no new checkpoint. An import that fails
after sending and is run again sends the same messages (the same events are still new), which the
stream folds once; a second import of the same file finds nothing new and sends nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
from datetime import UTC, datetime

import pandas as pd
from pyspark.sql import functions as F
from pyspark.sql import types as T

from conf.errors import JobInputError
from conf.settings import Settings, is_uri
from connectors import delta_io, kafka_io, mongo_io
from connectors.files import binary_files
from connectors.services import require_kafka, require_mongo
from events.contract import MAX_STRING
from events.producer import ListenProducer
from history.events import event_of, history_messages, report, report_lines
from history.formats import FORMATS, FormatError, Problem, detect, read_export
from history.match import Catalogue, Track
from spark_jobs.session import build_spark
from spark_jobs.streaming.archive import EVENTS_SCHEMA, merge_events

log = logging.getLogger("earshot.import_history")
COLLECTION = "history_imports"
ROWS = T.StructType(
    [
        T.StructField("source", T.StringType()),
        T.StructField("line", T.LongType()),
        T.StructField("problem", T.StringType()),
        T.StructField("at", T.LongType()),
        T.StructField("artist", T.StringType()),
        T.StructField("title", T.StringType()),
        T.StructField("kind", T.StringType()),
        T.StructField("format", T.StringType()),
        T.StructField("track_id", T.LongType()),
        T.StructField("rule", T.StringType()),
        T.StructField("genre", T.StringType()),
        T.StructField("event_id", T.StringType()),
        T.StructField("type", T.StringType()),
        T.StructField("client", T.StringType()),
        T.StructField("context", T.StringType()),
    ]
)
STRING_COLUMNS = [f.name for f in ROWS.fields if isinstance(f.dataType, T.StringType)]
EVENT_FIELDS = ("event_id", "type", "client", "context")  # history.events.event_of's, carried to event_rows
CATALOGUE_FIELDS = ("title", "artist_name", "album_title", "genre_top", "recording_mbid", "isrc")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", required=True, help="the listener whose history it is (their listener id)")
    parser.add_argument("--format", choices=FORMATS, help="default: recognised from each file's content")
    parser.add_argument("files", nargs="+", help="export files: a ListenBrainz zip or JSON, Last.fm CSV or JSON")


def main(settings: Settings, args: argparse.Namespace) -> int:
    user = args.user.strip()
    if not user or len(user) > MAX_STRING:
        raise JobInputError(f"--user must be a listener id of 1 to {MAX_STRING} characters")
    paths = [_checked(p) for p in args.files]
    require_mongo(settings)
    require_kafka(settings)
    with mongo_io.connect(settings) as client:
        catalogue, genres = catalogue_of(mongo_io.database(client, settings))
    spark = build_spark(settings, app_name="import-history")
    now = datetime.now(UTC)
    rows = history_rows(spark, paths, user, args.format, catalogue, genres, now).cache()
    events = event_rows(rows, user).cache()
    sent = send_to_taste(settings, new_events(spark, events, settings.lake_table("events"), user), user, now)
    inserted = merge_events(spark, events, settings.lake_table("events"))
    summary = summarise(rows, events.count())
    with mongo_io.connect(settings) as client:
        doc = {"_id": f"{user}@{now.isoformat()}", "user_id": user, "files": paths, "at": now,
               "events_added": inserted, "taste_listens": sent[0], "taste_messages": sent[1], **summary}  # fmt: skip
        mongo_io.set_fields_many(mongo_io.database(client, settings), COLLECTION, [doc])
    lines = [f"import-history: {user}", *report_lines(summary), f"{inserted} new events in Delta events",
             f"{sent[0]} listens sent to the live taste in {sent[1]} history messages"]  # fmt: skip
    for line in lines:
        print(line)  # noqa: T201 - command-line output
    return 0


def _checked(path: str) -> str:
    name = path.rstrip("/").rsplit("/", 1)[-1]
    if name.startswith(("_", ".")):  # Spark's file sources pass over such names without a word
        raise JobInputError(f"{path}: Spark does not read a file whose name starts with '_' or '.'; "
                            "rename it (or copy it to a name without one) and import that")  # fmt: skip
    if is_uri(path):
        return path
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise JobInputError(f"{path}: no such file, or not readable")
    return os.path.abspath(path)


def catalogue_of(db) -> tuple[Catalogue, dict[int, str | None]]:
    docs = list(mongo_io.catalogue_documents(db, CATALOGUE_FIELDS))
    if not docs:
        raise JobInputError("the catalogue is empty: run ./spark-submit.sh ingest first")
    tracks = [Track(int(d["_id"]), d.get("artist_name") or "", d.get("title") or "", d.get("album_title") or "",
                    d.get("recording_mbid") or "", d.get("isrc") or "") for d in docs]  # fmt: skip
    return Catalogue(tracks), {int(d["_id"]): d.get("genre_top") for d in docs}


def history_rows(spark, paths: list[str], user: str, fmt: str | None, catalogue, genres, now: datetime):
    """One row per line of every file: a problem, or a listen with its match and event id (null: unmatched)."""
    matcher = spark.sparkContext.broadcast((catalogue, genres))

    def parse(batches):
        catalogue, genres = matcher.value
        for pdf in batches:
            for path, content in zip(pdf["path"], pdf["content"], strict=True):
                yield _file_rows(path.rsplit("/", 1)[-1], bytes(content), user, fmt, catalogue, genres, now)

    files = binary_files(spark, paths).select("path", "content")
    return files.mapInPandas(parse, schema=ROWS)


def _file_rows(name: str, content: bytes, user: str, fmt: str | None, catalogue, genres, now) -> pd.DataFrame:
    try:
        found = fmt or detect(name, content)
        listens, problems = read_export(name, content, fmt=found, now=now)
    except FormatError as exc:
        found, listens, problems = None, [], [Problem(name, 0, str(exc))]
    matches = catalogue.match_many(listens)
    rows = [{"source": p.source, "line": p.line, "problem": p.reason} for p in problems]
    for x, m in zip(listens, matches, strict=True):
        row = {"source": x.source, "line": x.line, "at": x.at, "artist": x.artist, "title": x.title, "kind": x.kind,
               "format": found}  # fmt: skip
        if m is not None:
            event = event_of(user, x, m[0], found)
            row.update(track_id=m[0], rule=m[1], genre=genres.get(m[0]), **{k: event[k] for k in EVENT_FIELDS})
        rows.append(row)
    frame = pd.DataFrame(rows, columns=ROWS.fieldNames()).astype({"line": "Int64", "at": "Int64", "track_id": "Int64"})
    # A text column with no value in the file (no problems, or nothing matched) would be float NaN, which
    # Arrow cannot hand to Spark as text: objects with None.
    for name in STRING_COLUMNS:
        frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame


def event_rows(rows, user: str):
    """Delta ``events`` rows of the matched listens, each event id once."""
    values = {name: F.col(name) for name in ("track_id", "genre", *EVENT_FIELDS)}
    values.update(user_id=F.lit(user), ts=F.timestamp_seconds("at"))  # the listen's own time
    matched = rows.filter(F.col("event_id").isNotNull()).dropDuplicates(["event_id"])
    return matched.select(*[values.get(f.name, F.lit(None)).cast(f.dataType).alias(f.name) for f in EVENTS_SCHEMA])


def new_events(spark, events, location: str, user: str) -> pd.DataFrame:
    """The events that Delta ``events`` does not hold yet (event_id, track_id, type, ts_ms), read on the driver."""
    if delta_io.table_exists(spark, location):
        span = events.agg(F.min("ts").alias("lo"), F.max("ts").alias("hi")).first()
        if span["lo"] is None:
            return pd.DataFrame(columns=["event_id", "track_id", "type", "ts_ms"])
        held = delta_io.read_table(spark, location).filter(
            (F.col("user_id") == user) & F.col("ts").between(span["lo"], span["hi"])
        )
        events = events.join(held.select("event_id"), "event_id", "left_anti")
    return events.select("event_id", "track_id", "type", F.unix_millis("ts").alias("ts_ms")).toPandas()


def send_to_taste(settings: Settings, new: pd.DataFrame, user: str, now: datetime) -> tuple[int, int]:
    """The new events as history messages on Kafka ``listens``, each acknowledged; (listens, messages) sent."""
    messages = history_messages(user, new.to_dict("records"), now)
    if messages:
        kafka_io.ensure_topic(settings, settings.kafka.listens_topic)  # the stream may not have run yet
        with ListenProducer(settings.kafka.bootstrap_servers, topic=settings.kafka.listens_topic) as producer:
            sends = [producer.send_history(message) for message in messages]
            producer.flush()
            for send in sends:
                send.get(timeout=60)  # a message Kafka did not take fails the import before the MERGE
    return len(new), len(messages)


def summarise(rows, events: int, top: int = 10) -> dict:
    """:func:`history.events.report` from Spark's counts: nothing but the top lists reaches the driver."""
    listens = rows.filter(F.col("problem").isNull())
    unmatched = listens.filter(F.col("track_id").isNull())
    by_rule = {r["rule"]: r["count"] for r in listens.groupBy("rule").count().collect() if r["rule"]}
    artists = unmatched.groupBy("artist").count().orderBy(F.desc("count"), "artist").limit(top).collect()
    tracks = unmatched.groupBy("artist", "title").count().orderBy(F.desc("count"), "artist", "title").limit(top)
    problems = rows.filter(F.col("problem").isNotNull())
    first = problems.orderBy("source", "line").limit(top).collect()
    return report(
        listens=listens.count(),
        problems=problems.count(),
        matched_by=by_rule,
        unmatched=unmatched.count(),
        events=events,
        top_artists=[(r["artist"], r["count"]) for r in artists],
        top_tracks=[(r["artist"], r["title"], r["count"]) for r in tracks.collect()],
        first_problems=[f"{r['source']}:{r['line']}: {r['problem']}" for r in first],
    )
