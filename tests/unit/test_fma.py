"""FMA's metadata formats: tracks.csv's three header lines, list literals, subsets, features.csv."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from connectors.fma import (
    FmaFormatError,
    audio_relpath,
    catalogue_from_fma,
    in_subset,
    load_features_csv,
    load_genres,
    load_tracks,
    parse_list,
    track_id_from_path,
    write_genres_csv,
    write_tracks_csv,
)
from spark_jobs.sample_plan import PLANTED, genres_frame, plan, tracks_frame
from udfs.schema import FEATURE_COLUMNS, FEATURE_SIZES, STATISTICS

pytestmark = pytest.mark.unit


def test_audio_layout():
    assert audio_relpath(2) == "000/000002.mp3"
    assert audio_relpath(123456, "ogg") == "123/123456.ogg"
    assert track_id_from_path("file:/lib/audio/123/123456.mp3") == 123456
    assert track_id_from_path("s3a://b/fma_large/000/000002.FLAC") == 2
    assert track_id_from_path("/lib/audio/999/123456.mp3") is None  # folder does not match the id
    assert track_id_from_path("/lib/audio/123/123456.txt") is None


def test_list_literals():
    assert parse_list("[21, 76]") == [21, 76]
    assert parse_list("['rock', 'indie']") == ["rock", "indie"]
    assert parse_list("") == [] and parse_list(float("nan")) == []
    with pytest.raises(FmaFormatError):
        parse_list("{'a': 1}")


def test_subsets_nest():
    s = pd.Series(["small", "medium", "large", "small"])
    assert in_subset(s, "small").tolist() == [True, False, False, True]
    assert in_subset(s, "medium").tolist() == [True, True, False, True]
    assert in_subset(s, "large").all()
    with pytest.raises(FmaFormatError, match="unknown subset 'tiny'"):
        in_subset(s, "tiny")


@pytest.fixture()
def sample_metadata(tmp_path: Path) -> Path:
    specs, artists = plan(30, seed=3, broken=True)
    tracks = tracks_frame(specs, artists, {}, seed=3)
    write_tracks_csv(tracks, tmp_path / "tracks.csv")
    write_genres_csv(genres_frame(tracks), tmp_path / "genres.csv")
    return tmp_path


def test_tracks_csv_has_fmas_three_header_lines_and_52_columns(sample_metadata: Path):
    lines = (sample_metadata / "tracks.csv").read_text().splitlines()
    assert lines[0].startswith(",album,album") and lines[1].startswith(",comments,date_created")
    assert lines[2].startswith("track_id,,,")
    tracks = load_tracks(sample_metadata / "tracks.csv")
    assert tracks.shape == (30, 52)
    assert tracks.columns.get_level_values(0).unique().tolist() == ["album", "artist", "set", "track"]
    bio = tracks[("artist", "bio")].iloc[0]
    assert '"' in bio and "," in bio and "\n" in bio  # HTML with quotes, commas, newlines survives


def test_catalogue_rows_and_subset_filter(sample_metadata: Path):
    tracks = load_tracks(sample_metadata / "tracks.csv")
    genres = load_genres(sample_metadata / "genres.csv")
    large = catalogue_from_fma(tracks, genres, subset="large")
    small = catalogue_from_fma(tracks, genres, subset="small")
    assert len(large) == 30 and 0 < len(small) < 30
    row = large.iloc[0]
    assert isinstance(row["genre_ids"], list) and row["genre_top"] in genres["title"].tolist()
    assert set(row["genre_ids"]) <= set(row["genres_all"])
    assert len(row["genre_names"]) == len(row["genres_all"])


def test_not_an_fma_file_is_a_clear_error(tmp_path: Path):
    (tmp_path / "tracks.csv").write_text("a,b\n1,2\n")
    with pytest.raises(FmaFormatError, match="not an FMA tracks.csv"):
        load_tracks(tmp_path / "tracks.csv")


def write_fma_features_csv(path: Path, track_ids: list[int], seed: int = 0) -> pd.DataFrame:
    """features.csv exactly as FMA wrote it: a sorted 3-level column MultiIndex, index track_id."""
    cols = pd.MultiIndex.from_tuples(
        [(f, s, f"{i + 1:02d}") for f, n in FEATURE_SIZES.items() for s in STATISTICS for i in range(n)],
        names=["feature", "statistics", "number"],
    ).sort_values()
    values = np.random.default_rng(seed).normal(size=(len(track_ids), len(cols)))
    frame = pd.DataFrame(values, index=pd.Index(track_ids, name="track_id"), columns=cols)
    frame.to_csv(path, float_format="%.10e")
    return frame


def test_features_csv_imports_by_name(tmp_path: Path):
    frame = write_fma_features_csv(tmp_path / "features.csv", [2, 3, 5])
    lines = (tmp_path / "features.csv").read_text().splitlines()
    assert lines[0].startswith("feature,chroma_cens") and lines[1].startswith("statistics,kurtosis")
    assert lines[2].startswith("number,01") and lines[3].startswith("track_id,")
    flat = load_features_csv(tmp_path / "features.csv", FEATURE_COLUMNS)
    assert list(flat.columns) == list(FEATURE_COLUMNS) and flat.index.tolist() == [2, 3, 5]
    np.testing.assert_allclose(flat["mfcc_mean_01"].to_numpy(), frame[("mfcc", "mean", "01")].to_numpy())


def test_sample_library_plan_is_deterministic_and_plants_every_case():
    a, _ = plan(40, seed=5, broken=True)
    b, _ = plan(40, seed=5, broken=True)
    assert a == b
    assert sorted(s.kind for s in a if s.kind != "music") == sorted(PLANTED)
    assert len({s.track_id for s in a}) == 40


def test_long_stereo_ogg_is_written_without_crashing(tmp_path: Path):
    """Regression: one 45 s 48 kHz stereo write segfaulted libsndfile's Vorbis encoder."""
    import soundfile as sf

    from spark_jobs.sample_library import write_audio

    samples = (np.random.default_rng(0).standard_normal((48000 * 45, 2)) * 0.1).astype(np.float32)
    write_audio(tmp_path / "long.ogg", samples, 48000, "ogg")
    back, rate = sf.read(tmp_path / "long.ogg")
    assert rate == 48000 and back.shape == samples.shape
