"""Tests for lipnet_ko.files: where generated data goes (data_dir), shipped data, atomic JSON writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lipnet_ko.files import DATA_DIR_ENV, PROJECT_DATA_DIR, data_dir, write_json_atomic


def test_data_dir_defaults_to_data_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert data_dir() == tmp_path.absolute() / "data"
    assert data_dir().is_absolute() and not data_dir().exists()  # named, not created


def test_data_dir_does_not_follow_the_package(tmp_path, monkeypatch):
    # Installed as a wheel the package sits in site-packages: its data/ beside it is no place to write.
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert PROJECT_DATA_DIR not in (data_dir(), *data_dir().parents)


def test_environment_variable_then_explicit_folder_override_the_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "from-env"))
    assert data_dir() == tmp_path / "from-env"
    assert data_dir(tmp_path / "given") == tmp_path / "given"  # the flag wins over the environment
    assert data_dir("relative") == tmp_path.absolute() / "relative"  # relative to the working directory
    monkeypatch.setenv(DATA_DIR_ENV, "")
    assert data_dir() == tmp_path.absolute() / "data"  # an empty variable counts as unset
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_dir("~/lipnet") == tmp_path / "home" / "lipnet"


def test_shipped_data_is_read_from_the_checkout():
    assert (PROJECT_DATA_DIR / "sentences" / "grammar.json").is_file()
    assert (PROJECT_DATA_DIR / "lm" / "ko_open_jamo_6gram.arpa.gz").is_file()
    assert PROJECT_DATA_DIR == Path(__file__).resolve().parents[1] / "data"


def test_write_json_atomic_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "sub" / "result.json"
    write_json_atomic(path, {"text": "다람쥐 헌 쳇바퀴에 타고파"})
    assert json.loads(path.read_text(encoding="utf-8")) == {"text": "다람쥐 헌 쳇바퀴에 타고파"}
    with pytest.raises(TypeError):
        write_json_atomic(path, {"bad": object()})
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]  # the old file stays, no .tmp left
    assert json.loads(path.read_text(encoding="utf-8")) == {"text": "다람쥐 헌 쳇바퀴에 타고파"}


def test_crops_of_a_read_only_corpus_go_to_the_data_folder(tmp_path):
    """CI's ../shared/data is read-only: its crops are cached under the data folder, not beside the corpus."""
    from lipnet_ko.files import corpus_cache_dir, is_writable_place

    open_corpus = tmp_path / "mine"
    open_corpus.mkdir()
    assert corpus_cache_dir(open_corpus, tmp_path / "data") == tmp_path / "mine-crops"
    manifest = tmp_path / "clips.csv"
    manifest.write_text("video,text\n", encoding="utf-8")
    assert corpus_cache_dir(manifest, tmp_path / "data") == tmp_path / "clips-crops"
    shelf = tmp_path / "shelf"
    (shelf / "corpus").mkdir(parents=True)
    shelf.chmod(0o555)  # r-x, as ../shared/data is; root may still write there, so the mode bits decide
    try:
        assert not is_writable_place(shelf / "corpus-crops")
        cache = corpus_cache_dir(shelf / "corpus", tmp_path / "data")
        assert cache.parent == tmp_path / "data" / "crops" and cache.name.startswith("corpus-") and cache.name.endswith("-crops")
        assert corpus_cache_dir(shelf / "corpus" / ".." / "corpus", tmp_path / "data") == cache  # one corpus, one cache
        (shelf.parent / "other").mkdir()
        assert corpus_cache_dir(shelf.parent / "other", tmp_path / "data") != cache
    finally:
        shelf.chmod(0o755)
