"""Catalogue fields of untagged files from the folder layout users keep their music in."""

from __future__ import annotations

import pytest

from connectors.audio import disc_folder
from spark_jobs.folder_tags import layout_guess, read_tags, relative, stable_track_id, track_ids

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
    assert layout_guess(rel) == {"artist": artist, "album": album, "title": title, "disc": None}


@pytest.mark.parametrize(
    ("rel", "disc"),
    [
        ("Nina Simone/Pastel Blues/CD2/03 Be My Husband.flac", 2),
        ("Nina Simone/Pastel Blues/Disc 1/03 Be My Husband.flac", 1),
        ("Nina Simone/Pastel Blues/disk 02/03 Be My Husband.flac", 2),
        ("Nina Simone/Pastel Blues/[CD 3]/03 Be My Husband.flac", 3),
        ("Nina Simone/Pastel Blues/Disc 4 - Live/03 Be My Husband.flac", 4),
        ("Nina Simone/Pastel Blues/CD5 (Bonus)/03 Be My Husband.flac", 5),
    ],
)
def test_a_disc_s_folder_gives_the_disc_and_the_album_is_the_folder_above(rel, disc):
    """Regression: ``Artist/Album/CD2/NN Title`` gave the album "CD2" by the artist "Album"."""
    guess = {"artist": "Nina Simone", "album": "Pastel Blues", "title": "Be My Husband", "disc": disc}
    assert layout_guess(rel) == guess
    assert read_tags(f"/lib/{rel}", b"", root="/lib")["disc_number"] == disc


@pytest.mark.parametrize("name", ["CDs", "Discography", "Disc", "Best of CD", "1999", "Cdrama 2", "Disc 1999"])
def test_other_folders_are_not_discs(name):
    assert disc_folder(name) is None
    assert layout_guess(f"Artist/{name}/01 Song.mp3")["album"] == name


def test_a_song_on_a_disc_takes_the_album_s_cover_from_the_folder_above(tmp_path):
    from PIL import Image

    from api.media import cover_folders, folder_image

    album = tmp_path / "lib" / "Artist" / "Album"
    (album / "CD2").mkdir(parents=True)
    song = album / "CD2" / "01 Song.flac"
    assert cover_folders(song, str(tmp_path / "lib")) == [album / "CD2", album]
    assert folder_image(album / "CD2") is None
    Image.new("RGB", (8, 8)).save(album / "Cover.JPG")
    assert folder_image(album)[1] == "image/jpeg"
    root_disc = tmp_path / "CD1"
    assert cover_folders(root_disc / "01.flac", str(root_disc)) == [root_disc], "never above the library"


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


def test_a_name_that_is_not_utf8_is_named_for_the_user_and_never_handed_to_spark(tmp_path):
    """Regression: a Latin-1 file name (a library copied from an old Windows disk) was left out by ingest without
    a word (Java reads the bytes as another name, and no file has it)."""
    import os

    from connectors.files import not_utf8, skipped_by_spark

    root = os.fsencode(tmp_path)
    for rel in (
        b"caf\xe9 - Song.mp3",
        b"_Singles/na\xefve.flac",
        b"Ol\xe9/one.wav",
        b"Caf\xc3\xa9/fine.mp3",
        b"x\xe9.txt",
    ):
        os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
        with open(os.path.join(root, rel), "wb") as f:
            f.write(b"x")
    assert sorted(not_utf8(str(tmp_path))) == [
        f"{tmp_path}/Ol\\xe9/one.wav",
        f"{tmp_path}/_Singles/na\\xefve.flac",
        f"{tmp_path}/caf\\xe9 - Song.mp3",
    ]
    assert skipped_by_spark(str(tmp_path)) == [], "an _ folder's file that is not UTF-8 is not handed to Spark"
    assert not_utf8("hdfs://namenode/music") == []


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
    for root in (f"file:{library}", f"file://{library}"):  # paths.library_root as a URI (regression: all refused)
        assert in_library(f"file:{library}/Album/b.mp3", root) == library / "Album" / "b.mp3"
        assert in_library("file:/etc/passwd", root) is None


REL = "Unknown Artist/Unknown Album/01 Track 1.mp3"


@pytest.mark.parametrize("root", ["/music", "/music/", "file:/music", "file:///music", "file:///music/"])
def test_a_path_is_taken_under_its_folder_however_the_folder_is_named(root):
    """Regression: ``--folder file:///music`` took no file as under it, so every album's ``01.mp3`` had one id."""
    for path in ("file:/music/A/01.mp3", "/music/A/01.mp3", "file:///music/A/01.mp3"):
        assert relative(path, root) == "A/01.mp3"
    assert relative("file:/musical/A/01.mp3", root) == "01.mp3", "a folder whose name only starts the same"
    assert relative("hdfs://nn:8020/music/A/01.mp3", "hdfs://nn:8020/music") == "A/01.mp3"


def test_two_folders_with_the_same_relative_path_keep_their_files_apart():
    """Regression: ids were the hash of the relative path alone, so the second folder's file overwrote the
    first's catalogue row (one of two tracks lost, its features and history given to the other)."""
    first = track_ids({f"/a/{REL}": REL}, [], exists=lambda p: True)
    assert first == {f"/a/{REL}": stable_track_id(REL)}, "a new file in an empty catalogue: the hash of its path"
    catalogue = [(stable_track_id(REL), f"/a/{REL}", False)]
    second = track_ids({f"/b/{REL}": REL, "/b/x.mp3": "x.mp3"}, catalogue, exists=lambda p: True)
    assert second[f"/b/{REL}"] == stable_track_id(f"/b/{REL}") != stable_track_id(REL)
    assert second["/b/x.mp3"] == stable_track_id("x.mp3")
    catalogue.append((second[f"/b/{REL}"], f"/b/{REL}", False))
    held = {path: tid for tid, path, _ in catalogue}
    for path in held:  # each folder ingested again: its file keeps the id its path has
        assert track_ids({path: REL}, catalogue, exists=lambda p: True) == {path: held[path]}


def test_a_moved_library_keeps_its_ids_and_a_removed_file_s_id_is_taken_over():
    catalogue = [(stable_track_id(REL), f"/a/{REL}", False), (stable_track_id(f"/b/{REL}"), f"/b/{REL}", False)]
    moved = track_ids({f"/c/{REL}": REL}, catalogue, exists=lambda p: not p.startswith("/b/"))
    assert moved == {f"/c/{REL}": stable_track_id(f"/b/{REL}")}, "/b moved to /c: its file keeps its id"
    gone = [(stable_track_id(REL), f"/a/{REL}", True)]
    assert track_ids({f"/d/{REL}": REL}, gone, exists=lambda p: True) == {f"/d/{REL}": stable_track_id(REL)}
    nowhere = track_ids({f"/e/{REL}": REL}, catalogue[:1], exists=lambda p: False)
    assert nowhere == {f"/e/{REL}": stable_track_id(REL)}, "the first folder moved: its ids follow it"


def test_a_deeper_path_chooses_first_and_no_two_files_share_an_id():
    old = "/old/x/a/b.mp3"
    catalogue = [(stable_track_id("x/a/b.mp3"), old, False)]
    files = {"/new/x/a/b.mp3": "x/a/b.mp3", "/new/a/b.mp3": "a/b.mp3"}
    ids = track_ids(files, catalogue, exists=lambda p: False)
    assert ids == {"/new/x/a/b.mp3": stable_track_id("x/a/b.mp3"), "/new/a/b.mp3": stable_track_id("a/b.mp3")}
    twice = [(5, f"/a/{REL}", True), (9, f"/a/{REL}", False)]  # a path catalogued under an old id, now gone
    assert track_ids({f"/a/{REL}": REL}, twice, exists=lambda p: True) == {f"/a/{REL}": 9}, "the live row's id"
    asked: list[str] = []
    track_ids({f"/b/{REL}": REL, "/b/y.mp3": "y.mp3"}, [(stable_track_id(REL), f"/a/{REL}", False)], asked.append)
    assert asked == [f"/a/{REL}"], "only a holder's file is looked for, once"


def test_replay_gain_values_read_as_taggers_write_them():
    from spark_jobs.folder_tags import replay_gain

    got = replay_gain({"replaygain_track_gain": "-6.48 dB", "replaygain_album_gain": "\u22127,5 dB",
                       "replaygain_track_peak": "0.988525", "replaygain_album_peak": "0"})  # fmt: skip
    assert got == {"replaygain_track_gain": -6.48, "replaygain_album_gain": -7.5, "replaygain_track_peak": 0.988525,
                   "replaygain_album_peak": None}, "a peak of 0 is no peak"  # fmt: skip
    assert replay_gain({"replaygain_track_gain": "loud", "r128_track_gain": "-1280"})["replaygain_track_gain"] == 0.0
    assert set(replay_gain({}).values()) == {None}


def test_replay_gain_is_catalogued_from_flac_mp3_m4a_and_opus_tags(tmp_path):
    """foobar2000 and beets write Vorbis comments (FLAC, Ogg), ID3 TXXX frames (MP3; mutagen's own easy names read
    RVA2 frames only), iTunes freeform atoms (.m4a); Opus files carry R128 gains."""
    import numpy as np
    import soundfile as sf
    from mutagen.flac import FLAC
    from mutagen.id3 import ID3, TXXX
    from mutagen.mp4 import MP4, MP4FreeForm
    from mutagen.oggopus import OggOpus

    from tests.audio_files import encode

    tone = (0.3 * np.sin(np.arange(44100) / 44100 * 2 * np.pi * 440)).astype(np.float32)
    flac, mp3, m4a, opus = (tmp_path / f"a.{kind}" for kind in ("flac", "mp3", "m4a", "opus"))
    sf.write(flac, tone, 44100)
    media = FLAC(flac)
    media.update({"REPLAYGAIN_TRACK_GAIN": "-6.48 dB", "REPLAYGAIN_TRACK_PEAK": "0.988525"})
    media.save()
    mp3.write_bytes(encode(tone, 44100, "mp3"))
    frames = ID3()
    frames.add(TXXX(encoding=3, desc="REPLAYGAIN_TRACK_GAIN", text=["-3.10 dB"]))
    frames.add(TXXX(encoding=3, desc="replaygain_album_gain", text=["-4.20 dB"]))  # the case mp3gain writes
    frames.save(mp3)
    m4a.write_bytes(encode(tone, 44100, "m4a"))
    media = MP4(m4a)
    media["----:com.apple.iTunes:replaygain_track_gain"] = [MP4FreeForm(b"-2.5 dB")]
    media.save()
    opus.write_bytes(encode(tone, 48000, "opus"))
    media = OggOpus(opus)
    media["R128_TRACK_GAIN"] = ["-1280"]  # -5 dB against -23 LUFS: 0 dB against ReplayGain's -18
    media.save()
    rows = {p.suffix: read_tags(str(p), None, root=str(tmp_path)) for p in (flac, mp3, m4a, opus)}
    gains = {k: (r["replaygain_track_gain"], r["replaygain_album_gain"]) for k, r in rows.items()}
    assert gains == {".flac": (-6.48, None), ".mp3": (-3.1, -4.2), ".m4a": (-2.5, None), ".opus": (0.0, None)}
    assert rows[".flac"]["replaygain_track_peak"] == 0.988525
