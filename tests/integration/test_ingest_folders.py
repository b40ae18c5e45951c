"""Ingest of a folder of music over time: changed files reach Mongo field by field, an older catalogue upgrades."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
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
    (folder / "Lists").mkdir()
    (folder / "Lists" / "Mix.m3u").write_bytes(  # as Winamp writes one on Windows: cp1252, backslashes, CRLF
        f"#EXTM3U\r\n#EXTINF:2,Artist 2 - Song 2\r\n..\\Artist 2 - Song 2.wav\r\n{folder}/Artist 0 - Song 0.wav\r\n"
        f"..\\Caf\xe9 - Gone.wav\r\n{tmp_path}/other/Artist 2 - Song 2.wav\r\n".encode("cp1252")
    )
    assert run_job(ingest, settings, "--folder", str(folder)) == 0
    lake = table(settings, "tracks").set_index("title")["track_id"]
    with mongo_io.connect(settings) as client:
        mix = client[settings.mongo.database]["playlists"].find_one({"source.kind": "library"})
    assert (mix["name"], mix["track_ids"], mix["owner"]) == ("Mix", [lake["Song 2"], lake["Song 0"]], None)
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
    ids = set(table(settings, "tracks")["track_id"])
    assert run_job(ingest, settings, "--folder", f"file://{folder}") == 0, "the folder named by a file: URI"
    marked = table(settings, "tracks")
    assert set(marked["track_id"]) == ids and list(marked[marked["gone"]]["title"]) == ["Song 1"]
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

    # A second folder into the same lake with a file at the same relative path (regression: one id, so the
    # second file's row overwrote the first's), then that folder moved (its file keeps its id).
    before = table(settings, "tracks").set_index("audio_path")["track_id"].to_dict()
    other = tmp_path / "other"
    write_tone(other / "Artist 2 - Song 2.wav", 2.0)
    assert run_job(ingest, settings, "--folder", str(other)) == 0
    assert run_job(ingest, settings, "--folder", str(folder)) == 0
    lake = table(settings, "tracks")
    assert len(lake) == 7 and lake["track_id"].is_unique and not lake["gone"].any()
    assert lake.set_index("audio_path")["track_id"].to_dict().items() >= before.items(), "the first folder's ids"
    twins = lake[lake["title"] == "Song 2"].set_index("audio_path")["duration_s"].round(1).to_dict()
    with mongo_io.connect(settings) as client:  # the playlist names a song of the other folder, now catalogued
        mix = client[settings.mongo.database]["playlists"].find_one({"source.kind": "library"})
    other_id = lake.set_index("audio_path")["track_id"][f"file:{other}/Artist 2 - Song 2.wav"]
    assert mix["track_ids"][-1] == other_id and len(mix["track_ids"]) == 3
    assert twins == {f"file:{folder}/Artist 2 - Song 2.wav": 3.0, f"file:{other}/Artist 2 - Song 2.wav": 2.0}
    theirs = lake.set_index("audio_path")["track_id"][f"file:{other}/Artist 2 - Song 2.wav"]
    other.rename(tmp_path / "moved")
    assert run_job(ingest, settings, "--folder", str(tmp_path / "moved")) == 0
    lake = table(settings, "tracks").set_index("track_id")
    assert len(lake) == 7 and lake.loc[theirs, "audio_path"] == f"file:{tmp_path}/moved/Artist 2 - Song 2.wav"
    assert run_job(check, settings) == 0, "Delta and Mongo agree"
    (folder / "Lists" / "Mix.m3u").unlink()
    assert run_job(ingest, settings, "--folder", str(folder)) == 0
    with mongo_io.connect(settings) as client:
        assert client[settings.mongo.database]["playlists"].count_documents({}) == 0, "its file removed"
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


def ingested(folder: Path, tmp_path: Path, database: str):
    """The settings of a fresh catalogue of ``folder`` (its own database, extract without embeddings), ingested."""
    import dataclasses

    from connectors import mongo_io

    settings = load_settings(isolated_environ(tmp_path, MONGO_DATABASE=database, EARSHOT_LIBRARY_ROOT=str(folder)))
    settings = dataclasses.replace(settings, extract=dataclasses.replace(settings.extract, embedding="none"))
    with mongo_io.connect(settings) as client:
        client.drop_database(settings.mongo.database)
    assert run_job(ingest, settings, "--folder", str(folder)) == 0
    return settings


def test_a_library_of_m4a_wma_aac_and_aiff_is_catalogued_from_its_tags_and_analysed(stack, spark, tmp_path, capsys):
    """What iTunes, Windows Media Player and a Mac leave in a music folder, beside an MP3: each file's tags reach
    the catalogue, each is analysed (FFmpeg for what libsndfile does not read), and each is served as its type."""

    from connectors import mongo_io
    from connectors.audio import audio_path
    from spark_jobs import extract
    from tests import audio_files

    folder = tmp_path / "music"
    t = np.arange(22050 * 6) / 22050
    tone = (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
    made = {
        "Singer/Album/01 untagged.m4a": audio_files.encode(tone, 22050, "m4a"),
        "Singer/Album/02 lossless.m4a": audio_files.encode(tone, 22050, "alac.m4a"),
        "Other/Record/03 old.wma": audio_files.encode(tone, 22050, "wma"),
        "Other/Record/04 raw.aac": audio_files.encode(tone, 22050, "aac"),
    }
    for rel, data in made.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    sf.write(folder / "Other/Record/05 mac.aiff", tone, 22050, format="AIFF")
    write_tone(folder / "Other/Record/06 plain.wav", 6.0)
    audio_files.tag(folder / "Singer/Album/02 lossless.m4a", title="Lossless", artist="Tagged Singer",
                    album="Tagged Album", genre="Folk", tracknumber="7", date="2004", isrc="USABC0400001",
                    albumartist="The Singers", discnumber="2")  # fmt: skip
    audio_files.tag(folder / "Singer/Album/01 untagged.m4a", compilation="1")  # flagged, no album artist named
    audio_files.tag(folder / "Other/Record/03 old.wma", title="Old", artist="WMA Artist", album="WMA Album",
                    genre="Jazz", tracknumber="3", date="2001")  # fmt: skip
    audio_files.tag(folder / "Other/Record/05 mac.aiff", title="Mac", artist="AIFF Artist", genre="Ambient")
    settings = ingested(folder, tmp_path, "earshot_test_ingest_formats")
    lake = table(settings, "tracks").set_index("title")
    assert len(lake) == 6
    lossless, old, mac = lake.loc["Lossless"], lake.loc["Old"], lake.loc["Mac"]
    fields = ["artist_name", "album_title", "genre_top", "track_number", "year"]
    assert list(lossless[fields]) == ["Tagged Singer", "Tagged Album", "Folk", 7, 2004]
    assert lossless["isrc"] == "USABC0400001", "iTunes keeps the ISRC in a freeform atom"
    assert (lossless["album_artist"], lossless["disc_number"]) == ("The Singers", 2)
    assert lake.loc["untagged", "album_artist"] == "Various Artists", "a compilation's flag"
    assert lake.loc["Old", "album_artist"] is None and pd.isna(lake.loc["Old", "disc_number"])
    assert list(old[fields]) == ["WMA Artist", "WMA Album", "Jazz", 3, 2001]
    assert (mac["artist_name"], mac["album_title"], mac["genre_top"]) == ("AIFF Artist", "Record", "Ambient")
    assert lake.loc["untagged", "artist_name"] == "Singer" and lake.loc["raw", "track_number"] == 4
    assert lake.loc["untagged", "duration_s"] == pytest.approx(6.0, abs=0.1)

    capsys.readouterr()
    assert run_job(extract, settings) == 0
    assert "extract: 6 tracks analysed (6 with features, 0 errors)" in capsys.readouterr().out
    features = table(settings, "features")
    assert set(features["track_id"]) == set(lake["track_id"])
    with mongo_io.connect(settings) as client:
        db = client[settings.mongo.database]
        served = {Path(audio_path(db, settings, int(tid))[0]).suffix: audio_path(db, settings, int(tid))[1]
                  for tid in lake["track_id"]}  # fmt: skip
        doc = db["tracks"].find_one({"_id": int(lossless["track_id"])})
        assert (doc["album_artist"], doc["disc_number"]) == ("The Singers", 2)
        client.drop_database(settings.mongo.database)
    assert served == {".m4a": "audio/mp4", ".wma": "audio/x-ms-wma", ".aac": "audio/aac", ".aiff": "audio/aiff",
                      ".wav": "audio/wav"}  # fmt: skip


def test_names_with_brackets_colons_and_odd_characters_are_catalogued_and_analysed(stack, spark, tmp_path, capsys):
    """Music's names are full of what Spark reads as a glob (``[Live]``, ``Why?``) and what Hadoop's paths read
    as a scheme (``Bach: Suites``): a library folder named ``Albums [FLAC]`` was "Path does not exist", a file
    named with a colon failed the whole scan, a ``.Flac`` was not seen, and a name starting with ``_`` (which
    Spark's file sources never list) was left out without a word."""

    from connectors import mongo_io
    from connectors.audio import checked_file
    from spark_jobs import extract

    folder = tmp_path / "Albums [FLAC] #1 50%"
    names = ["Song [Live].wav", "Bach: Suites [1998]/Op. 27: No. 2.wav", "Why?.wav", "star*.wav", "{braces}.wav",
             "back\\slash.wav", "Ünïcödé/Ça va.wav", "100% #1.wav", "Mixed.Flac", "UPPER.WAV"]  # fmt: skip
    for i, name in enumerate(names):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(22050 * 2) / 22050
        tone = (0.3 * np.sin(2 * np.pi * (300 + 20 * i) * t)).astype(np.float32)
        sf.write(folder / name, tone, 22050, format="FLAC" if name.endswith(".Flac") else "WAV")
    for i, hidden in enumerate(("_Singles/one.wav", "Record/_Intro.wav")):  # Spark never lists these
        (folder / hidden).parent.mkdir(exist_ok=True)
        t = np.arange(22050 * 2) / 22050
        sf.write(folder / hidden, (0.3 * np.sin(2 * np.pi * (700 + 50 * i) * t)).astype(np.float32), 22050)
    names += ["_Singles/one.wav", "Record/_Intro.wav"]
    settings = ingested(folder, tmp_path, "earshot_test_ingest_names")
    lake = table(settings, "tracks")
    assert sorted(lake["title"]) == sorted(["Song [Live]", "Op. 27: No. 2", "Why?", "star*", "{braces}",
                                            "back\\slash", "Ça va", "100% #1", "Mixed", "UPPER", "one",
                                            "_Intro"])  # fmt: skip
    assert {checked_file(p, settings)[0].name for p in lake["audio_path"]} == {Path(n).name for n in names}
    capsys.readouterr()
    assert run_job(extract, settings) == 0
    assert "extract: 12 tracks analysed (12 with features, 0 errors)" in capsys.readouterr().out
    assert sorted(table(settings, "features")["track_id"]) == sorted(lake["track_id"])
    assert run_job(ingest, settings, "--folder", str(folder)) == 0, "a second run finds the same files"
    assert not table(settings, "tracks")["gone"].any()
    with mongo_io.connect(settings) as client:
        client.drop_database(settings.mongo.database)


def test_a_file_over_spark_s_limit_is_catalogued_from_its_own_tags_and_recorded_too_large(stack, spark, tmp_path):
    """A file Spark cannot read into one value (2 GiB by default: a 24-bit recording of a concert) failed the
    whole ingest and the whole extract; now it is catalogued from the file's own tags and is an error row with
    its reason. The limit is lowered here so that a 2.6 MB file stands for one over 2 GiB."""
    from connectors import mongo_io
    from spark_jobs import extract

    folder = tmp_path / "music"
    for i in range(2):
        write_tone(folder / f"Band - Short {i}.wav", 2.0, 300.0 + 100 * i)
    write_tone(folder / "Band - Concert.wav", 60.0)
    limit = "spark.sql.sources.binaryFile.maxLength"
    spark.conf.set(limit, "1000000")
    try:
        settings = ingested(folder, tmp_path, "earshot_test_ingest_large")
        lake = table(settings, "tracks").set_index("title")
        assert lake.loc["Concert", "duration_s"] == pytest.approx(60.0), "its length read from the file itself"
        assert run_job(extract, settings) == 0
        errors = table(settings, "extract_errors")
        assert list(errors["track_id"]) == [lake.loc["Concert", "track_id"]]
        assert errors["reason"].iloc[0].startswith("file too large to analyse: over 1,000,000 bytes")
        assert len(table(settings, "features")) == 2
    finally:
        spark.conf.unset(limit)
        with mongo_io.connect(load_settings(isolated_environ(tmp_path))) as client:
            client.drop_database("earshot_test_ingest_large")


def test_linked_albums_are_catalogued_analysed_and_served_and_a_link_loop_is_not_walked(stack, spark, tmp_path):
    """Albums linked in from another disk are the library's; a link back into the folder made the scan walk the
    loop until the path was too long and fail, and a linked file was refused by the server as outside the library.
    """
    from connectors import mongo_io
    from connectors.audio import checked_file
    from spark_jobs import extract

    folder, elsewhere = tmp_path / "music", tmp_path / "other disk"
    write_tone(folder / "Real" / "A - One.wav", 2.0)
    write_tone(elsewhere / "Album" / "B - Two.wav", 2.0, 500.0)
    write_tone(elsewhere / "C - Three.wav", 2.0, 600.0)
    (folder / "Linked").symlink_to(elsewhere / "Album", target_is_directory=True)
    (folder / "Real" / "C - Three.wav").symlink_to(elsewhere / "C - Three.wav")
    (folder / "Real" / "loop").symlink_to(folder, target_is_directory=True)
    (folder / "Real" / "gone.wav").symlink_to(tmp_path / "nowhere.wav")
    settings = ingested(folder, tmp_path, "earshot_test_ingest_links")
    try:
        lake = table(settings, "tracks")
        assert sorted(lake["title"]) == ["One", "Three", "Two"]
        assert {checked_file(p, settings)[0].name for p in lake["audio_path"]} == {"A - One.wav", "B - Two.wav",
                                                                                    "C - Three.wav"}  # fmt: skip
        assert run_job(extract, settings) == 0
        assert len(table(settings, "features")) == 3
    finally:
        with mongo_io.connect(settings) as client:
            client.drop_database(settings.mongo.database)
