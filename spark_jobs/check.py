"""check: does the serving store (Mongo ``tracks``) hold what the lake (Delta ``tracks``, ``features``) holds?

Compares, track by track:

- ids: a track in Delta ``tracks`` with no Mongo document (``missing``), a Mongo
  document with neither a Delta ``tracks`` row nor features (``extra``);
- catalogue fields: every column of Delta ``tracks`` (title, artist, album,
  genres, duration, audio path, ...) against the document's field of the same
  name (``field``, counted per field);
- features: a track with features of the configured ``extract.feature_version``
  in Delta whose document has no features or another version (``features``),
  and a document that claims that version for a track Delta has none of (features
  of tracks outside the catalogue, as ``import-fma-features`` writes, count too).

Prints a count per kind and up to ``--examples`` differences each, and stores
the result in Mongo ``pipeline_checks`` (``_id`` = "tracks"; the dashboard's
monitoring page shows it). Exits 0 when the stores agree, 1 when they differ.
``--repair`` then writes Mongo from Delta (the lake is the truth): catalogue
fields and features are ``$set`` on the differing documents, extra documents
are deleted, and the check runs again to show the result.
"""

from __future__ import annotations

import argparse
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from conf.settings import Settings
from connectors import delta_io, mongo_io
from connectors.services import require_mongo
from spark_jobs.session import build_spark

log = logging.getLogger("earshot.check")

SKIP_COLUMNS = {"track_id", "content_hash"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repair", action="store_true", help="write Mongo from Delta where they differ")
    parser.add_argument("--examples", type=int, default=10, help="differences shown per kind (default 10)")
    parser.add_argument("--feature-version", help="default: extract.feature_version")


@dataclass
class Report:
    tracks: int = 0
    documents: int = 0
    missing: list[int] = field(default_factory=list)
    extra: list[Any] = field(default_factory=list)
    fields: dict[int, list[str]] = field(default_factory=dict)
    features: list[int] = field(default_factory=list)

    @property
    def differences(self) -> int:
        return len(self.missing) + len(self.extra) + len(self.fields) + len(self.features)

    def summary(self, examples: int) -> dict:
        per_field = Counter(f for names in self.fields.values() for f in names)
        return {
            "tracks": self.tracks,
            "documents": self.documents,
            "differences": self.differences,
            "missing": len(self.missing),
            "extra": len(self.extra),
            "field": len(self.fields),
            "features": len(self.features),
            "per_field": dict(per_field.most_common()),
            "examples": {
                "missing": self.missing[:examples],
                "extra": [str(e) for e in self.extra[:examples]],
                "field": [{"track_id": t, "fields": f} for t, f in list(self.fields.items())[:examples]],
                "features": self.features[:examples],
            },
        }


def same(a: Any, b: Any) -> bool:
    """Equal as the serving store keeps values: NaN is None, tuples and numpy arrays are lists."""
    return mongo_io.clean_value(a) == mongo_io.clean_value(b)


def compare(
    lake: dict[int, dict],
    featured: set[int],
    docs: dict[Any, dict],
    version: str,
    other_features: set[int] = frozenset(),
) -> Report:
    """The differences between the lake's rows (by track id) and the serving store's documents (by ``_id``).

    ``other_features``: tracks with features of other versions only (FMA's own, ``features_fma``): their
    documents are not extra.
    """
    report = Report(tracks=len(lake), documents=len(docs))
    for track_id, row in lake.items():
        doc = docs.get(track_id)
        if doc is None:
            report.missing.append(track_id)
            continue
        wrong = [name for name, value in row.items() if name not in SKIP_COLUMNS and not same(value, doc.get(name))]
        if wrong:
            report.fields[track_id] = wrong
        has = (doc.get("features") or {}).get("version") == version
        if has != (track_id in featured):
            report.features.append(track_id)
    for track_id in sorted(featured - lake.keys()):  # features of a track outside the catalogue (import-fma-features)
        if (docs.get(track_id, {}).get("features") or {}).get("version") != version:
            report.features.append(track_id)
    report.extra = sorted((k for k in docs if k not in lake and k not in featured and k not in other_features), key=str)
    return report


def read_lake(spark: SparkSession, settings: Settings, version: str) -> tuple[dict[int, dict], set[int], set[int]]:
    tracks_loc, features_loc = settings.lake_table("tracks"), settings.lake_table("features")
    lake: dict[int, dict] = {}
    if delta_io.table_exists(spark, tracks_loc):
        for row in delta_io.read_table(spark, tracks_loc).toLocalIterator():
            d = row.asDict(recursive=True)
            lake[int(d["track_id"])] = d
    featured: set[int] = set()
    other: set[int] = set()
    if delta_io.table_exists(spark, features_loc):
        ids = delta_io.read_table(spark, features_loc).select("track_id", "feature_version").distinct()
        for r in ids.toLocalIterator():
            (featured if r.feature_version == version else other).add(int(r.track_id))
    return lake, featured, other - featured


def read_serving(db, columns: list[str]) -> dict[Any, dict]:
    projection = {c: 1 for c in columns if c not in SKIP_COLUMNS} | {"features.version": 1}
    return {d["_id"]: d for d in db["tracks"].find({}, projection)}


def repair(
    spark: SparkSession, settings: Settings, db, report: Report, lake: dict[int, dict], featured: set[int], version: str
) -> int:
    """Write Mongo from Delta for every differing track; returns how many documents were written or deleted."""
    from spark_jobs.extract_chunk import mongo_features
    from spark_jobs.ingest import tracks_document

    wrong = set(report.missing) | set(report.fields)
    docs = [tracks_document(lake[t]) for t in sorted(wrong)]
    mongo_io.set_fields_many(db, "tracks", docs)
    stale = set(report.features) | {t for t in report.missing if t in featured}  # a lost document lost its features
    if stale:
        from bson.binary import Binary

        features = delta_io.read_table(spark, settings.lake_table("features"))
        rows = features.filter((F.col("feature_version") == version) & F.col("track_id").isin(sorted(stale)))
        have = {}
        for r in rows.toLocalIterator():
            d = r.asDict()
            have[int(d["track_id"])] = {
                "_id": int(d["track_id"]),
                "features": mongo_features(d, version=version, binary=Binary),
            }
        mongo_io.set_fields_many(db, "tracks", list(have.values()))
        gone = [t for t in stale if t not in have]
        if gone:
            db["tracks"].update_many({"_id": {"$in": gone}}, {"$unset": {"features": ""}})
    if report.extra:
        db["tracks"].delete_many({"_id": {"$in": list(report.extra)}})
    return len(wrong | stale) + len(report.extra)


def run_check(spark: SparkSession, settings: Settings, db, version: str) -> tuple[Report, dict[int, dict], set[int]]:
    lake, featured, other = read_lake(spark, settings, version)
    columns = sorted({c for row in lake.values() for c in row})
    return compare(lake, featured, read_serving(db, columns), version, other), lake, featured


def print_report(summary: dict, *, title: str) -> None:
    print(f"check: {title}: {summary['tracks']} tracks in Delta, {summary['documents']} documents in Mongo")  # noqa: T201
    for kind, what in (
        ("missing", "in Delta, no Mongo document"),
        ("extra", "a Mongo document, not in Delta"),
        ("field", "catalogue fields differ"),
        ("features", "features differ (version)"),
    ):
        print(f"  {summary[kind]:8d}  {what}  {summary['examples'][kind] if summary[kind] else ''}")  # noqa: T201
    if summary["per_field"]:
        print("  fields: " + ", ".join(f"{k} {v}" for k, v in summary["per_field"].items()))  # noqa: T201
    print(f"check: {summary['differences']} differences")  # noqa: T201


def main(settings: Settings, args: argparse.Namespace) -> int:
    require_mongo(settings)
    version = args.feature_version or settings.extract.feature_version
    spark = build_spark(settings, app_name="check")
    with mongo_io.connect(settings) as client:
        db = mongo_io.database(client, settings)
        report, lake, featured = run_check(spark, settings, db, version)
        summary = report.summary(args.examples)
        print_report(summary, title="before repair" if args.repair and report.differences else "result")
        repaired = 0
        if args.repair and report.differences:
            repaired = repair(spark, settings, db, report, lake, featured, version)
            print(f"check: repaired {repaired} documents from Delta")  # noqa: T201
            report, _, _ = run_check(spark, settings, db, version)
            summary = report.summary(args.examples)
            print_report(summary, title="after repair")
        db["pipeline_checks"].replace_one(
            {"_id": "tracks"},
            {**summary, "feature_version": version, "repaired": repaired, "at": datetime.now(UTC)},
            upsert=True,
        )
    return 0 if report.differences == 0 else 1
