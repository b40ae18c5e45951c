"""Ingest of a folder of music over time: changed files reach Mongo field by field, an older catalogue upgrades."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conf.settings import load_settings
from spark_jobs import check, ingest
from tests.conftest import isolated_environ
from tests.integration.jobs import run_job, table

pytestmark = [pytest.mark.spark, pytest.mark.mongo]


def write_tone(path: Path, seconds: float, freq: float = 440.0) -> None:
    t = np.arange(int(22050 * seconds)) / 22050
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 22050)


def test_a_second_ingest_of_a_changed_folder_reaches_mongo_field_by_field(stack, spark, tmp_path):
    """Regression: new and changed rows were computed against Delta and came out empty for Mongo after the MERGE."""
    from connectors import mongo_io

    folder = tmp_path / "music"
    for i in range(3):
        write_tone(folder / f"Artist {i} - Song {i}.wav", 1.0 + i)
    env = isolated_environ(tmp_path, MONGO_DATABASE="earshot_test_ingest_again")
    settings = load_settings(env)
    with mongo_io.connect(settings) as client:
        client.drop_database(settings.mongo.database)
    assert run_job(ingest, settings, "--folder", str(folder)) == 0
    for i in range(3, 6):  # three new files
        write_tone(folder / f"Artist {i} - Song {i}.wav", 1.0)
    write_tone(folder / "Artist 0 - Song 0.wav", 4.0)  # one changed: a longer recording
    assert run_job(ingest, settings, "--folder", str(folder)) == 0
    lake = table(settings, "tracks").set_index("track_id")
    assert run_job(check, settings) == 0, "the check finds Delta and Mongo in agreement"
    with mongo_io.connect(settings) as client:
        docs = {d["_id"]: d for d in client[settings.mongo.database]["tracks"].find()}
        assert client[settings.mongo.database]["pipeline_checks"].find_one({"_id": "tracks"})["differences"] == 0
    assert len(lake) == 6 and set(docs) == set(lake.index)
    for track_id, row in lake.iterrows():
        doc = docs[track_id]
        for field in ("title", "artist_name", "album_title", "audio_path", "source"):
            assert doc.get(field) == row[field], (track_id, field)
        assert doc["duration_s"] == pytest.approx(row["duration_s"])
    changed = lake[lake["title"] == "Song 0"].iloc[0]
    assert changed["duration_s"] == pytest.approx(4.0, abs=0.01)
    assert not lake["gone"].any()

    removed = folder / "Artist 1 - Song 1.wav"
    removed.unlink()
    assert run_job(ingest, settings, "--folder", str(folder)) == 0
    assert run_job(ingest, settings, "--folder", str(folder)) == 0, "a second run over the same folder"
    lake = table(settings, "tracks").set_index("track_id")
    with mongo_io.connect(settings) as client:
        docs = {d["_id"]: d for d in client[settings.mongo.database]["tracks"].find()}
    assert len(lake) == 6, "a removed file's track stays in the lake"
    gone = lake[lake["gone"]]
    assert list(gone["title"]) == ["Song 1"]
    assert docs[gone.index[0]]["gone"] is True
    assert sum(bool(d.get("gone")) for d in docs.values()) == 1
    assert run_job(check, settings) == 0
    write_tone(removed, 1.0)
    assert run_job(ingest, settings, "--folder", str(folder)) == 0
    assert not table(settings, "tracks")["gone"].any(), "a file that comes back is catalogued again"
    with mongo_io.connect(settings) as client:
        client.drop_database(settings.mongo.database)


def test_a_catalogue_written_before_the_newest_columns_takes_a_removed_file(stack, spark, tmp_path):
    """Regression: over a `tracks` table from an earlier Earshot (no track_number, no year), an ingest of a
    folder with a removed file failed (UNRESOLVED_COLUMN track_number) while marking it gone."""
    from connectors import mongo_io

    folder = tmp_path / "music"
    for i in range(3):
        write_tone(folder / f"Artist {i} - Song {i}.wav", 1.0 + i)
    settings = load_settings(isolated_environ(tmp_path, MONGO_DATABASE="earshot_test_ingest_upgrade"))
    with mongo_io.connect(settings) as client:
        client.drop_database(settings.mongo.database)
    assert run_job(ingest, settings, "--folder", str(folder)) == 0
    loc = settings.lake_table("tracks")
    older = spark.read.format("delta").load(loc).drop("track_number", "year")
    older.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(loc)
    (folder / "Artist 1 - Song 1.wav").unlink()
    assert run_job(ingest, settings, "--folder", str(folder)) == 0
    lake = table(settings, "tracks").set_index("track_id")
    assert {"track_number", "year"} <= set(lake.columns)
    assert list(lake[lake["gone"]]["title"]) == ["Song 1"] and len(lake) == 3
    with mongo_io.connect(settings) as client:
        client.drop_database(settings.mongo.database)
