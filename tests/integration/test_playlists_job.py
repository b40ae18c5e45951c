"""The playlists job on real Spark, Delta and the MongoDB-protocol server: a mix for every archived listener."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conf.errors import JobInputError
from connectors import mongo_io
from index.reader import Index
from spark_jobs import playlists as job
from spark_jobs.streaming.archive import EVENTS_SCHEMA
from tests.integration.jobs import run_job
from tests.integration.streaming import publish_synthetic_index, stream_settings

pytestmark = [pytest.mark.spark, pytest.mark.mongo]


def test_every_listener_gets_a_flowing_mix_of_their_taste_and_a_rerun_replaces_it(stack, spark, tmp_path, capsys):
    settings = stream_settings(tmp_path, "mix")
    publish_synthetic_index(settings)
    index = Index.open(settings.paths.index_root)
    catalogue = index.catalogue
    start = datetime.now(UTC) - timedelta(hours=1)
    rows, offset = [], 0
    for user, genre in (("jazz-fan", "Jazz"), ("folk-fan", "Folk")):
        for i, track in enumerate(catalogue.ids_of_genre(genre)[::9][:6]):
            for kind in ("play", "like" if i % 2 else "complete"):
                offset += 1
                rows.append((f"e{offset}", user, int(track), kind, start + timedelta(seconds=offset), None, None,
                             "dashboard", None, None, genre, 0, offset, 1))  # fmt: skip
    rows.append(("gone", "left", 999_999, "like", start, None, None, None, None, None, None, 0, 999, 1))
    spark.createDataFrame(rows, EVENTS_SCHEMA).write.format("delta").save(settings.lake_table("events"))
    client = mongo_io.connect(settings)
    db = mongo_io.database(client, settings)
    try:
        assert run_job(job, settings, "--length", "12") == 0
        said = capsys.readouterr().out
        assert "wrote 2 mixes of up to 12 tracks" in said and "1 of 3 listeners without one" in said
        for user, genre in (("jazz-fan", "Jazz"), ("folk-fan", "Folk")):
            mix = db["playlists"].find_one({"_id": f"mix:{user}"})
            tracks = mix["track_ids"]
            assert (mix["owner"], mix["name"], len(tracks)) == (user, "Your mix", 12)
            assert mix["source"] == {"kind": "mix", "index_version": index.version}
            assert sum(catalogue.get(t).genre == genre for t in tracks) >= 10  # their taste
            heard = {r[2] for r in rows if r[1] == user}
            assert not heard & set(tracks)  # nothing they already played
            artists = [catalogue.get(t).artist for t in tracks]
            assert all(a != b for a, b in zip(artists, artists[1:], strict=False))
        assert db["playlists"].find_one({"_id": "mix:left"}) is None
        first = db["playlists"].find_one({"_id": "mix:jazz-fan"})
        assert run_job(job, settings, "--length", "12") == 0
        again = db["playlists"].find_one({"_id": "mix:jazz-fan"})
        assert db["playlists"].count_documents({}) == 2 and again["track_ids"] == first["track_ids"]
        assert again["updated_at"] > first["updated_at"]
        with pytest.raises(JobInputError, match="between 1 and 200"):
            run_job(job, settings, "--length", "0")
    finally:
        client.drop_database(settings.mongo.database)
        client.close()
