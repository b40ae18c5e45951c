"""The lake-against-serving-store comparison of ``check``, on plain rows and documents."""

from __future__ import annotations

import math

import pytest

from spark_jobs.check import compare

pytestmark = pytest.mark.unit


def row(track_id: int, **fields):
    base = {"track_id": track_id, "title": f"T{track_id}", "duration_s": 30.0, "genre_ids": [1, 2], "content_hash": "h"}
    return {**base, **fields}


def doc(track_id, version="v1", **fields):
    d = {"_id": track_id, "title": f"T{track_id}", "duration_s": 30.0, "genre_ids": [1, 2], **fields}
    if version:
        d["features"] = {"version": version}
    return d


def test_agreeing_stores_have_no_differences_and_nan_equals_a_missing_value():
    lake = {1: row(1), 2: row(2, duration_s=math.nan)}
    docs = {1: doc(1), 2: {k: v for k, v in doc(2).items() if k != "duration_s"}}
    report = compare(lake, {1, 2}, docs, "v1")
    assert report.differences == 0 and report.tracks == 2 and report.documents == 2


def test_each_kind_of_difference_is_counted_once_with_its_fields():
    lake = {1: row(1), 2: row(2), 3: row(3), 4: row(4)}
    docs = {
        2: doc(2, title="edited", genre_ids=[2, 1]),  # two fields differ
        3: doc(3, version=None),  # its features are missing
        4: doc(4, version="v0"),  # another feature version
        "stray": {"_id": "stray"},
    }
    report = compare(lake, {2, 3, 4}, docs, "v1")
    assert report.missing == [1]
    assert report.fields == {2: ["title", "genre_ids"]}
    assert report.features == [3, 4]
    assert report.extra == ["stray"]
    summary = report.summary(examples=10)
    assert summary["differences"] == 5 and summary["per_field"] == {"title": 1, "genre_ids": 1}


def test_a_document_that_claims_features_the_lake_lacks_differs():
    report = compare({1: row(1)}, set(), {1: doc(1)}, "v1")
    assert report.features == [1]


def test_features_of_a_track_outside_the_catalogue_are_checked_not_called_extra():
    docs = {1: doc(1), 9: {"_id": 9, "features": {"version": "v1"}}, 8: {"_id": 8}}
    report = compare({1: row(1)}, {1, 9, 7}, docs, "v1")
    assert report.extra == [8], "9 mirrors the lake's features; 8 mirrors nothing"
    assert report.features == [7], "7 has features in the lake and no document"
    assert compare({1: row(1)}, {1}, {1: doc(1), 5: {"_id": 5}}, "v1", {5}).extra == [], "5 has FMA's features"
