"""The audio ETL on a planted sample library: real Spark, Delta and the MongoDB-protocol server.

Jobs run in-process on the session's Spark (their ``main(settings, args)``),
which is how spark-submit runs them too, minus a JVM start per step.
"""

from __future__ import annotations

import dataclasses
import io
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from deltalake import DeltaTable

from conf.settings import REPO_ROOT, Settings, load_settings
from spark_jobs import check, extract, import_fma_features, ingest, sample_library
from spark_jobs.sample_plan import PLANTED
from tests.conftest import isolated_environ
from tests.integration.jobs import run_job, table
from tests.unit.test_fma import write_fma_features_csv
from udfs.schema import FEATURE_COLUMNS, N_FEATURES, vector_from_bytes

pytestmark = [pytest.mark.spark, pytest.mark.mongo]
N_TRACKS = 48
BROKEN_REASONS = {
    "empty": "empty file (0 bytes)",
    # A 1.5 KB MP3 head: undecodable, no frames, or too short are all right.
    "truncated": ("cannot decode audio", "no audio frames", "too short"),
    "random_bytes": "cannot decode audio",
    "text_file": "cannot decode audio",
    "too_short": "too short",
    "missing_file": "audio file missing",
}


@pytest.fixture(scope="module")
def etl(stack, spark, tmp_path_factory) -> tuple[Settings, dict[str, int]]:
    root = tmp_path_factory.mktemp("etl")
    env = isolated_environ(root, EARSHOT_LIBRARY_ROOT=str(root / "library"), MONGO_DATABASE="earshot_test_etl")
    settings = load_settings(env)
    from connectors import mongo_io

    with mongo_io.connect(settings) as client:
        client.drop_database(settings.mongo.database)
    assert run_job(sample_library, settings, "--tracks", str(N_TRACKS)) == 0
    assert run_job(ingest, settings) == 0
    assert run_job(extract, settings, "--chunk-tracks", "20") == 0
    specs, _ = sample_library.plan(N_TRACKS, seed=7, broken=True)
    kinds = {s.kind: s.track_id for s in specs if s.kind != "music"}
    return settings, kinds


def test_every_good_track_has_a_finite_518_number_row_in_delta_and_mongo(etl):
    settings, kinds = etl
    feats = table(settings, "features")
    broken = {kinds[k] for k, outcome in PLANTED.items() if outcome == "error"}
    good = {s.track_id for s in sample_library.plan(N_TRACKS, seed=7, broken=True)[0]} - broken
    assert set(feats["track_id"]) == good
    values = feats[list(FEATURE_COLUMNS)].to_numpy(dtype=float)
    assert values.shape == (len(good), N_FEATURES) and np.isfinite(values).all()
    assert np.isfinite(feats["tempo"]).all()
    from connectors import mongo_io

    with mongo_io.connect(settings) as client:
        docs = list(client[settings.mongo.database]["tracks"].find({"features": {"$exists": True}}))
    assert {d["_id"] for d in docs} == good
    doc = next(d for d in docs if d["_id"] == kinds["silence"])
    vector = vector_from_bytes(doc["features"]["vector"])
    assert vector.shape == (N_FEATURES,) and np.isfinite(vector).all()
    assert doc["title"] == "Planted silence"  # ingest's fields survive extract's $set


def test_every_broken_file_has_an_error_row_with_its_reason(etl):
    settings, kinds = etl
    errors = table(settings, "extract_errors").set_index("track_id")
    expected = {kinds[k] for k, outcome in PLANTED.items() if outcome == "error"}
    assert set(errors.index) == expected
    for kind, reasons in BROKEN_REASONS.items():
        reasons = (reasons,) if isinstance(reasons, str) else reasons
        assert any(r in errors.loc[kinds[kind], "reason"] for r in reasons), kind


def test_odd_but_valid_audio_is_analysed(etl):
    settings, kinds = etl
    feats = table(settings, "features").set_index("track_id")
    assert feats.loc[kinds["mono_8k"], "source_rate"] == 8000
    assert feats.loc[kinds["six_channels"], "channels"] == 6
    assert feats.loc[kinds["silence"], "rmse_mean_01"] == 0.0
    # Three hours of silence with no seek table: the middle 30 s, not the whole file, is decoded.
    assert feats.loc[kinds["long_silence"], "clip_s"] == 30.0
    assert feats.loc[kinds["long_silence"], "rmse_mean_01"] == 0.0
    assert feats.loc[kinds["huge_header"], "channels"] == 2  # the music behind a 16 MB ID3 tag


def test_tracks_past_the_time_limit_are_error_rows_the_job_finishes_and_a_retry_recovers_them(etl, capsys):
    """Every track's analysis runs in a child under extract.track_time_limit_s; no 30 s clip is analysed in
    10 ms, so with that limit every analysed track is an error row that names the setting, and the job ends
    with exit 0. Raising the limit and --retry-errors then gives each of them its features (without the
    musicnn embedding, which the module's fixture covers: the retry is about the error rows, and the
    embedding would triple its time)."""
    settings, kinds = etl
    root = Path(settings.paths.lake_root).parent / "time-limit"
    tight = dataclasses.replace(
        settings,
        paths=dataclasses.replace(settings.paths, lake_root=str(root / "lake")),
        mongo=dataclasses.replace(settings.mongo, database="earshot_test_etl_limit"),
        extract=dataclasses.replace(settings.extract, track_time_limit_s=0.01, embedding="none"),
    )
    from connectors import mongo_io

    with mongo_io.connect(tight) as client:
        client.drop_database(tight.mongo.database)
    assert run_job(ingest, tight) == 0
    assert run_job(extract, tight) == 0
    errors = table(tight, "extract_errors").set_index("track_id")
    music = {s.track_id for s in sample_library.plan(N_TRACKS, seed=7, broken=True)[0] if s.kind == "music"}
    assert music <= set(errors.index)
    assert all("extract.track_time_limit_s" in errors.loc[t, "reason"] for t in music)
    assert not DeltaTable(tight.lake_table("features")).to_pandas()["track_id"].isin(music).any()

    relaxed = dataclasses.replace(tight, extract=dataclasses.replace(settings.extract, embedding="none"))
    capsys.readouterr()
    assert run_job(extract, relaxed, "--retry-errors") == 0
    assert "errors)" in capsys.readouterr().out
    feats = table(relaxed, "features")
    assert music <= set(feats["track_id"])
    left = set(table(relaxed, "extract_errors")["track_id"])
    assert left == {kinds[k] for k, outcome in PLANTED.items() if outcome == "error"}
    with mongo_io.connect(relaxed) as client:
        client.drop_database(relaxed.mongo.database)


def test_a_second_run_extracts_nothing_and_ingest_changes_nothing(etl, capsys):
    settings, _ = etl
    versions = {n: DeltaTable(settings.lake_table(n)).version() for n in ("tracks", "features", "extract_errors")}
    assert run_job(extract, settings) == 0
    assert run_job(ingest, settings) == 0
    out = capsys.readouterr().out
    assert "extract: 0 tracks analysed" in out and "0 missing, empty or too large files recorded" in out
    assert "0 new or changed written" in out
    assert {n: DeltaTable(settings.lake_table(n)).version() for n in versions} == versions


def test_a_changed_file_is_extracted_again_and_a_fixed_one_clears_its_error(etl, capsys):
    settings, kinds = etl
    tracks = table(settings, "tracks").set_index("track_id")
    before = table(settings, "features").set_index("track_id")
    changed = next(t for t in before.index if t not in kinds.values())
    fixed = kinds["random_bytes"]
    for track_id in (changed, fixed):
        path = Path(tracks.loc[track_id, "audio_path"].removeprefix("file:"))
        t = np.arange(22050 * 5) / 22050
        buf = io.BytesIO()
        sf.write(buf, (0.4 * np.sin(2 * np.pi * 3000 * t)).astype(np.float32), 22050, format="MP3")
        path.write_bytes(buf.getvalue())
    assert run_job(extract, settings) == 0
    assert "extract: 2 tracks analysed (2 with features, 0 errors)" in capsys.readouterr().out
    after = table(settings, "features").set_index("track_id")
    assert after.loc[changed, "spectral_centroid_mean_01"] != before.loc[changed, "spectral_centroid_mean_01"]
    assert fixed in after.index
    assert fixed not in set(table(settings, "extract_errors")["track_id"])


def test_import_fma_features(etl, tmp_path):
    settings, _ = etl
    write_fma_features_csv(tmp_path / "features.csv", [900001, 900002, 900003])
    assert run_job(import_fma_features, settings, "--features-csv", str(tmp_path / "features.csv")) == 0
    feats = table(settings, "features")
    imported = feats[feats["feature_version"] == "fma-csv"]
    assert sorted(imported["track_id"]) == [900001, 900002, 900003]
    assert np.isfinite(imported[list(FEATURE_COLUMNS)].to_numpy(dtype=float)).all()
    from connectors import mongo_io

    with mongo_io.connect(settings) as client:
        doc = client[settings.mongo.database]["tracks"].find_one({"_id": 900002})
    assert doc["features_fma"]["version"] == "fma-csv"
    np.testing.assert_allclose(
        vector_from_bytes(doc["features_fma"]["vector"]),
        imported[imported["track_id"] == 900002][list(FEATURE_COLUMNS)].to_numpy(dtype=float)[0],
        rtol=1e-6,
    )


def test_the_launcher_runs_the_etl_jobs_as_one_pipeline(etl):
    """ingest and extract as the pipeline job through the launcher, on a local master: one application."""
    settings, _ = etl
    env = {
        **os.environ,
        **isolated_environ(
            Path(settings.paths.lake_root).parent,
            EARSHOT_LIBRARY_ROOT=settings.paths.library_root,
            MONGO_DATABASE=settings.mongo.database,
        ),
    }
    result = subprocess.run(
        [str(REPO_ROOT / "spark-submit.sh"), "--master", "local[2]", "pipeline", "ingest", "extract --limit 5"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    said = [line.split(":")[0] for line in result.stdout.splitlines() if not line[:1].isdigit()]  # no log lines
    assert said == ["ingest", "extract", "pipeline"], result.stdout
    assert ", 0 new or changed written" in result.stdout and "extract: 0 tracks analysed" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("pipeline: 2 steps in one application (ingest ")


def test_build_index_publishes_a_version_the_query_library_opens(etl, capsys):
    from index.reader import Index
    from spark_jobs import build_index

    settings, kinds = etl
    assert run_job(build_index, settings, "--space", "features", "--version", "v-test-1") == 0
    assert "build-index: published v-test-1" in capsys.readouterr().out
    index = Index.open(settings.paths.index_root)
    feats = table(settings, "features")
    feats = feats[feats["feature_version"] == settings.extract.feature_version]
    assert index.version == "v-test-1" and len(index) == len(feats)
    assert index.manifest.columns[-1] == "tempo" and index.manifest.dims == settings.index.pca_components
    # A track whose features no other track shares: the changed-file test gives two tracks the same tone,
    # and a query for one of them may find the other first.
    alone = ~feats[[*FEATURE_COLUMNS, "tempo"]].duplicated(keep=False)
    some = int(feats.loc[alone, "track_id"].iloc[0])
    hits = index.similar(some, k=5)
    assert len(hits) == 5 and some not in [h.track_id for h in hits]
    assert all(h.reason for h in hits) and all(0 < h.score <= 1 for h in hits)
    # A raw feature row queries the same space: a track finds itself first.
    row = feats[feats["track_id"] == some][[*FEATURE_COLUMNS, "tempo"]].to_numpy(dtype=float)[0]
    assert index.search(row, k=1)[0].track_id == some
    tracks = table(settings, "tracks").set_index("track_id")
    artist_of = tracks["artist_name"].to_dict()
    for track_id in feats["track_id"]:
        (station,) = index.radio([int(track_id)], length=5, artist_of=artist_of)
        assert len(station) == 5 and int(track_id) not in [n.track_id for n in station]


@pytest.fixture(scope="module")
def musicnn_root(etl) -> Path:
    """build-index in its default space (index.space auto: the musicnn embeddings, which every good track
    has) as version v-musicnn, once for the module: the index root it published into."""
    from spark_jobs import build_index

    settings, _ = etl
    root = Path(settings.paths.index_root).parent / "index-musicnn"
    spaced = dataclasses.replace(settings, paths=dataclasses.replace(settings.paths, index_root=str(root)))
    assert run_job(build_index, spaced, "--version", "v-musicnn") == 0
    return root


def test_every_good_track_has_a_musicnn_embedding_and_the_index_can_serve_that_space(etl, musicnn_root):
    """extract.embedding (on by default) writes Delta embeddings beside features; build-index (index.space
    auto) then publishes an index over them whose "why" names the network's parts."""
    from index.reader import Index
    from udfs.schema import MUSICNN_COLUMNS, MUSICNN_DIMS

    settings, kinds = etl
    feats = table(settings, "features")
    feats = feats[feats["feature_version"] == settings.extract.feature_version]
    emb = table(settings, "embeddings")
    assert set(emb["track_id"]) == set(feats["track_id"]) and set(emb["model"]) == {"musicnn-msd"}
    vectors = np.stack(emb["vector"].to_numpy())
    assert vectors.shape == (len(feats), MUSICNN_DIMS) and np.isfinite(vectors).all()
    # One per track, not a constant (the two silent files, and the two files the changed-file test
    # rewrote with one tone, are alike by design).
    assert len(np.unique(vectors.round(3), axis=0)) >= len(vectors) - 2
    index = Index.open(musicnn_root)
    assert index.manifest.columns == list(MUSICNN_COLUMNS) and len(index) == len(feats)
    some = int(emb["track_id"].iloc[0])
    hits = index.similar(some, k=5)
    assert len(hits) == 5 and some not in [h.track_id for h in hits]
    words = ("similar overall", "timbre", "tempo", "texture")
    assert all(any(w in h.reason for w in words) for h in hits), [h.reason for h in hits]


def test_build_index_is_deterministic_for_a_seed(etl, musicnn_root):
    """A second build of the same library in the same space, into another root, is the same bytes."""
    from spark_jobs import build_index

    settings, _ = etl
    root = Path(settings.paths.index_root)
    assert run_job(build_index, settings, "--version", "v-test-2") == 0
    a, b = musicnn_root / "v-musicnn", root / "v-test-2"
    names = sorted(p.name for p in a.iterdir() if p.name != "manifest.json")
    assert names == sorted(p.name for p in b.iterdir() if p.name != "manifest.json")
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    # Both builds are kept (keep_versions is 3; pruning has unit tests), the newest is the published one.
    from index import store

    assert store.versions(root) == ["v-test-1", "v-test-2"]
    assert store.current_version(root) == "v-test-2"


def test_the_spark_job_and_the_plain_python_build_fit_the_same_index(etl, tmp_path):
    """index.fit is the one fitting code: the job (moments over partitions, points on executors) and
    index.local (one process) give the same scaler, points, centroids and shards on one library."""
    from index.local import build_version
    from index.reader import Index
    from spark_jobs import build_index

    settings, _ = etl
    root = tmp_path / "spark"
    spaced = dataclasses.replace(settings, paths=dataclasses.replace(settings.paths, index_root=str(root)))
    assert run_job(build_index, spaced, "--space", "features", "--shards", "4", "--version", "v-fit") == 0
    by_spark = Index.open(root)
    m = by_spark.manifest
    ids = np.sort(by_spark.track_ids())
    feats = table(settings, "features")
    feats = feats[feats["feature_version"] == m.feature_version].set_index("track_id").loc[ids]
    raw, k = feats[m.columns].to_numpy(np.float64), settings.index.pca_components
    local = Index(build_version(tmp_path / "local", ids, raw, m.columns, feature_version=m.feature_version, shards=4,
                                pca_components=k, n_trees=m.n_trees, seed=m.seed))  # fmt: skip
    assert len(m.shards) == len(local.manifest.shards) == 4 and local.manifest.dims == m.dims
    for name in ("scaler_mean.npy", "scaler_std.npy"):
        np.testing.assert_allclose(np.load(local.folder / name), np.load(by_spark.folder / name), rtol=1e-9)
    # The points, not the PCA's axes: past the library's rank (40 tracks, 64 axes) the axes are any basis of
    # the space no track reaches, and each path may pick another; every track's coordinates there are 0.
    np.testing.assert_allclose(local.points(local.items(ids)), by_spark.points(by_spark.items(ids)), atol=1e-4)
    for a, b in zip(local.manifest.shards, m.shards, strict=True):
        np.testing.assert_allclose(a.centroid, b.centroid, atol=1e-4)
        assert np.array_equal(np.load(local.folder / a.ids_file), np.load(by_spark.folder / b.ids_file))
    assert local.manifest.group_scale == pytest.approx(m.group_scale, rel=1e-5)
    assert [n.track_id for n in local.similar(int(ids[0]), k=10)] == [
        n.track_id for n in by_spark.similar(int(ids[0]), k=10)
    ]


def test_check_finds_each_kind_of_drift_and_repair_writes_mongo_from_delta(etl):
    """Drift made by hand in the serving store: a lost document, an edited field, lost features, a stray document."""
    from connectors import mongo_io

    settings, _ = etl
    version = settings.extract.feature_version
    assert run_job(check, settings) == 0, "what the pipeline wrote agrees"
    with mongo_io.connect(settings) as client:
        db = client[settings.mongo.database]
        before = {d["_id"]: d for d in db["tracks"].find({"features.version": version})}
        lost, edited, unfeatured = sorted(before)[:3]
        db["tracks"].delete_one({"_id": lost})
        db["tracks"].update_one({"_id": edited}, {"$set": {"title": "Tampered", "duration_s": -1.0}})
        db["tracks"].update_one({"_id": unfeatured}, {"$unset": {"features": ""}})
        db["tracks"].insert_one({"_id": 987654321, "title": "not in the lake"})

        assert run_job(check, settings) == 1, "a check that finds differences fails"
        found = db["pipeline_checks"].find_one({"_id": "tracks"})
        assert (found["missing"], found["field"], found["features"], found["extra"]) == (1, 1, 1, 1), found
        assert found["per_field"] == {"title": 1, "duration_s": 1}
        assert found["examples"]["missing"] == [lost] and found["examples"]["features"] == [unfeatured]
        assert db["tracks"].find_one({"_id": edited})["title"] == "Tampered", "a check alone writes nothing"

        assert run_job(check, settings, "--repair") == 0, "after the repair the stores agree"
        assert db["pipeline_checks"].find_one({"_id": "tracks"})["repaired"] == 4
        after = {d["_id"]: d for d in db["tracks"].find({"features.version": version})}
        assert set(after) == set(before)
        for track_id in (lost, edited, unfeatured):
            for name in ("title", "artist_name", "duration_s", "audio_path", "genre_top"):
                assert after[track_id].get(name) == before[track_id].get(name), (track_id, name)
            assert after[track_id]["features"]["vector"] == before[track_id]["features"]["vector"]
        assert db["tracks"].find_one({"_id": 987654321}) is None
