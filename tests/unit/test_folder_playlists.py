"""A library's .m3u playlists, as players on Windows, macOS and Linux write them, matched to its files."""

from __future__ import annotations

from pathlib import Path

import pytest

from spark_jobs.folder_playlists import Catalogue, entries, matched, playlist_files, resolve

pytestmark = pytest.mark.unit


def test_the_lines_of_a_playlist_are_its_paths():
    data = "\ufeff#EXTM3U\r\n#EXTINF:215,Nina Simone - Be My Husband\r\nNina/Be.mp3\r\n\r\n  # a note\n  x.flac \n"
    assert entries(data.encode("utf-8"), utf8_only=True) == ["Nina/Be.mp3", "x.flac"]
    latin = "#EXTM3U\nBj\xf6rk/J\xf3ga.mp3\n".encode("cp1252")  # Winamp's .m3u on Windows
    assert entries(latin, utf8_only=False) == ["Björk/Jóga.mp3"]
    assert entries(latin, utf8_only=True) == ["Bj\ufffdrk/J\ufffdga.mp3"], "an .m3u8 is UTF-8: nothing guessed"


@pytest.mark.parametrize(
    ("entry", "path"),
    [
        ("Nina/Be.mp3", "/lib/lists/Nina/Be.mp3"),
        ("../Nina/Be.mp3", "/lib/Nina/Be.mp3"),
        ("..\\Nina\\Be.mp3", "/lib/Nina/Be.mp3"),
        ("/music/Nina/Be.mp3", "/music/Nina/Be.mp3"),
        ("D:\\Music\\Nina\\Be.mp3", "/Music/Nina/Be.mp3"),
        ("file:///music/Nina/Be%20My.mp3", "/music/Nina/Be My.mp3"),
        ("http://radio.example/stream", None),
    ],
)
def test_an_entry_is_a_path_from_the_playlist_s_folder(entry, path):
    assert resolve(entry, Path("/lib/lists")) == path


def test_entries_match_by_path_then_case_then_their_last_folders():
    known = Catalogue({"/lib/Nina Simone/Pastel Blues/03 Be.mp3": 1, "/lib/Nina Simone/Other/03 Be.mp3": 2,
                       "/lib/A/B/x.mp3": 3, "/lib/C/B/x.mp3": 4})  # fmt: skip
    paths = [
        "/lib/Nina Simone/Pastel Blues/03 Be.mp3",
        "/lib/nina simone/OTHER/03 be.mp3",  # written on Windows, where case does not matter
        "/Music/Nina Simone/Pastel Blues/03 Be.mp3",  # written on another machine
        "/Music/B/x.mp3",  # two files end so: no guess
        "/lib/missing.mp3",
        None,  # a stream's URL
    ]
    assert matched(paths, known) == [1, 2, 1]


def test_playlist_files_are_found_in_a_local_folder_only(tmp_path):
    import os

    for rel in ("a.m3u", "Lists/b.M3U8", ".hidden/c.m3u", "._d.m3u", "notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    with open(os.path.join(os.fsencode(tmp_path), b"caf\xe9.m3u"), "wb") as latin:  # not UTF-8: passed over
        latin.write(b"x")
    assert playlist_files(str(tmp_path)) == [tmp_path / "a.m3u", tmp_path / "Lists" / "b.M3U8"]
    assert playlist_files(f"file://{tmp_path}") == playlist_files(str(tmp_path))
    assert playlist_files("hdfs://namenode/music") == []
