"""Catalogue fields of untagged files from the folder layout users keep their music in."""

from __future__ import annotations

import pytest

from spark_jobs.ingest import layout_guess, read_tags

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("rel", "artist", "album", "title"),
    [
        ("Nina Simone/Pastel Blues/03 Be My Husband.flac", "Nina Simone", "Pastel Blues", "Be My Husband"),
        ("Nina Simone/Pastel Blues/03 - Be My Husband.mp3", "Nina Simone", "Pastel Blues", "Be My Husband"),
        ("Nina Simone/Pastel Blues/3. Be My Husband.ogg", "Nina Simone", "Pastel Blues", "Be My Husband"),
        ("Music/Jazz/Nina Simone/Pastel Blues/Be My Husband.wav", "Nina Simone", "Pastel Blues", "Be My Husband"),
        ("Pastel Blues/Be My Husband.mp3", None, "Pastel Blues", "Be My Husband"),
        ("Nina Simone - Be My Husband.mp3", "Nina Simone", None, "Be My Husband"),
        ("Compilations/Blues/Nina Simone - Be My Husband.mp3", "Compilations", "Blues", "Be My Husband"),
        ("1999.mp3", None, None, "1999"),
        ("Prince/1999/1999.mp3", "Prince", "1999", "1999"),
        ("track.mp3", None, None, "track"),
    ],
)
def test_the_layout_gives_artist_album_and_title(rel, artist, album, title):
    assert layout_guess(rel) == {"artist": artist, "album": album, "title": title}


def test_an_untagged_file_takes_its_fields_from_the_folders():
    row = read_tags("/lib/Nina Simone/Pastel Blues/03 Be My Husband.mp3", b"not audio", root="/lib")
    assert (row["artist_name"], row["album_title"], row["title"]) == ("Nina Simone", "Pastel Blues", "Be My Husband")
    assert row["genre_top"] is None and row["duration_s"] is None
    assert row["track_number"] == 3 and row["year"] is None
    assert read_tags("/lib/Prince/1999/1999.mp3", b"", root="/lib")["track_number"] is None, "a title, not a number"


def test_tags_win_over_the_folders(tmp_path):
    import numpy as np
    import soundfile as sf
    from mutagen.oggvorbis import OggVorbis

    path = tmp_path / "Wrong Artist" / "Wrong Album" / "01 Wrong Title.ogg"
    path.parent.mkdir(parents=True)
    sf.write(path, np.zeros(22050, np.float32), 22050, format="OGG", subtype="VORBIS")
    tagged = OggVorbis(path)
    tagged.update({"title": "Right Title", "artist": "Right Artist", "album": "Right Album", "genre": "Folk"})
    tagged.update({"tracknumber": "7/12", "date": "2001-05-02"})
    tagged.update({"musicbrainz_trackid": "28B50C59-77E4-4254-A0BD-16797DDAA3CA", "isrc": "gb-aaa-97-00001"})
    tagged.save()
    row = read_tags(str(path), path.read_bytes(), root=str(tmp_path))
    assert (row["artist_name"], row["album_title"], row["title"]) == ("Right Artist", "Right Album", "Right Title")
    assert row["genre_top"] == "Folk" and row["duration_s"] == pytest.approx(1.0, abs=0.05)
    assert (row["track_number"], row["year"]) == (7, 2001), "track number and year from the tags, not the file name"
    assert (row["recording_mbid"], row["isrc"]) == ("28b50c59-77e4-4254-a0bd-16797ddaa3ca", "GBAAA9700001")
    assert read_tags(str(path), b"not audio", root=str(tmp_path))["recording_mbid"] is None


def test_the_files_spark_passes_over_are_found_so_the_jobs_read_them_themselves(tmp_path):
    """Spark's file sources never list a name starting with '_' (its metadata's convention, no option): the jobs
    list and read those themselves; a Mac's ._ forks are not audio."""
    from connectors.files import hidden_from_spark, skipped_by_spark

    for rel in ("_Singles/a.mp3", "Album/_Intro.flac", "Album/b.mp3", "Album/._b.mp3", ".cache/_c.mp3",
                "_Singles/notes.txt", "Album/_cover.jpg"):  # fmt: skip
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    found = skipped_by_spark(str(tmp_path))
    assert found == [f"file:{tmp_path}/Album/_Intro.flac", f"file:{tmp_path}/_Singles/a.mp3"]
    assert skipped_by_spark(f"file://{tmp_path}") == found
    assert skipped_by_spark("hdfs://namenode/music") == [], "only a local folder is walked"
    assert all(hidden_from_spark(p) for p in found) and not hidden_from_spark(f"file:{tmp_path}/Album/b.mp3")


def test_a_file_linked_into_the_library_is_in_it_and_a_path_that_climbs_out_is_not(tmp_path):
    from connectors.audio import in_library

    library = tmp_path / "music"
    (library / "Album").mkdir(parents=True)
    (tmp_path / "disk").mkdir()
    (library / "Linked").symlink_to(tmp_path / "disk", target_is_directory=True)
    assert in_library(str(library / "Linked" / "a.mp3"), str(library)) == library / "Linked" / "a.mp3"
    assert in_library(str(library / "Album" / ".." / ".." / "disk" / "a.mp3"), str(library)) is None
    assert in_library("/etc/passwd", str(library)) is None
    (tmp_path / "via").symlink_to(library, target_is_directory=True)  # the folder named through a link
    assert in_library(str(library / "Album" / "b.mp3"), str(tmp_path / "via")) is not None
