"""The data of a run: which splits a corpus gets, where the synthetic default lives, what is left out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lipnet_ko.data.clips import Clip
from lipnet_ko.data.corpora import write_split
from lipnet_ko.text.tokenizer import JamoTokenizer
from lipnet_ko.files import DATA_DIR_ENV
from lipnet_ko.synth.corpus import SPLIT_NAME, SYNTH_VERSION
from lipnet_ko.training import run_data
from lipnet_ko.training.run_data import (
    EVAL_SPLITS,
    DataConfig,
    _check_unique_ids,
    _load,
    _preprocess,
    split_clips,
    synthetic_dir,
)
from lipnet_ko.video.extract import PreprocessConfig

FIXTURE_RUN = Path(__file__).resolve().parents[1] / "fixtures" / "run-0.1.0"


def _train_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_script", Path(__file__).resolve().parents[2] / "train.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def _clips(texts, speaker):
    return [Clip(f"{speaker}_{i}.mp4", text=t, speaker=speaker, clip_id=f"{speaker}_{i}") for i, t in enumerate(texts)]


def test_named_splits_of_a_corpus_are_kept_and_cleared_of_training_sentences(tmp_path):
    train = _clips(["오늘 날씨가 좋다", "밥을 먹었다"], "C001")
    val = _clips(["내일 비가 온다"], "C002")
    unseen_sentences = _clips(["버스가 늦게 왔다", "밥을 먹었다"], "C003")  # the second was heard in training
    unseen_speakers = _clips(["창문을 열어 주세요"], "C090")
    write_split(tmp_path / SPLIT_NAME, {"train": train, "val": val, "unseen_sentences": unseen_sentences,
                                        "unseen_speakers": unseen_speakers})  # fmt: skip
    every = train + val + unseen_sentences + unseen_speakers
    splits = split_clips(every, tmp_path, DataConfig(val_share=0.3, seen_share=0.3))
    assert set(splits) == {"train", "val", "unseen_sentences", "unseen_speakers"}  # no seen / unseen carved out
    assert splits["train"] == train and splits["val"] == val and splits["unseen_speakers"] == unseen_speakers
    assert splits["unseen_sentences"] == unseen_sentences[:1]
    assert set(EVAL_SPLITS) >= {"unseen_sentences", "unseen_speakers", "seen", "unseen"}


def test_a_train_test_split_file_gets_val_seen_and_unseen_as_before(tmp_path):
    texts = [f"문장 {chr(0xAC00 + i)}" for i in range(20)]
    train, test = _clips(texts, "C001"), _clips(texts[:3], "C040")
    write_split(tmp_path / SPLIT_NAME, {"train": train, "test": test})
    splits = split_clips(train + test, tmp_path, DataConfig(val_share=0.2, seen_share=0.2))
    assert set(splits) == {"train", "val", "seen", "unseen"}
    assert splits["unseen"] == test  # held-out speakers keep their sentences even when training has them
    assert len(splits["val"]) + len(splits["seen"]) + len(splits["train"]) == len(train)
    assert not {c.text for c in splits["val"] + splits["seen"]} & {c.text for c in splits["train"]}


def test_configs_of_runs_before_corpus_v4_load_without_their_free_sentence_fields():
    from lipnet_ko.training.config import TrainConfig

    saved = json.loads((FIXTURE_RUN / "config.json").read_text(encoding="utf-8"))
    assert {"train_free", "free_sentences"} <= set(saved["data"])
    config = TrainConfig.from_dict({**saved, "data": {k: v for k, v in saved["data"].items() if k != "synth"}})
    assert not hasattr(config.data, "train_free")
    with pytest.raises(TypeError):
        DataConfig(train_free=True)
    with pytest.raises(ValueError, match="another synthetic corpus version than v4.*--data SPEC"):
        TrainConfig.from_dict(saved)  # v3's corpus settings (free_share, sentence_set "mixed") mean nothing to v4


def test_two_clips_with_one_id_are_refused_with_the_splits_named():
    _check_unique_ids({"train": ["a", "b"], "seen": ["c"], "unseen": ["d"]})  # all distinct: fine
    with pytest.raises(ValueError, match=r"clip id 'c' names two clips \(splits 'seen' and 'unseen'\)"):
        _check_unique_ids({"train": ["a", "b"], "seen": ["c"], "unseen": ["d", "c"]})


def test_synthetic_default_is_generated_under_the_working_directory(tmp_path, monkeypatch):
    # It used to sit beside the package (lipnet_ko/../data): for an installed wheel, site-packages' parent.
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert synthetic_dir(DataConfig()) == tmp_path.absolute() / "data" / "synth" / f"default-v{SYNTH_VERSION}"


def test_data_folder_comes_from_the_config_then_the_environment_and_synth_dir_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "env"))
    assert synthetic_dir(DataConfig()) == tmp_path / "env" / "synth" / f"default-v{SYNTH_VERSION}"
    config = DataConfig(data_dir=str(tmp_path / "flag"))
    assert synthetic_dir(config) == tmp_path / "flag" / "synth" / f"default-v{SYNTH_VERSION}"
    exact = DataConfig(data_dir=str(tmp_path / "flag"), synth_dir=str(tmp_path / "mine"))
    assert synthetic_dir(exact) == tmp_path / "mine"


def test_saved_run_configs_without_a_data_folder_still_load():
    from lipnet_ko.training.config import TrainConfig

    saved = json.loads((FIXTURE_RUN / "config.json").read_text(encoding="utf-8"))
    assert "data_dir" not in saved["data"]  # written before the field existed
    data = {k: v for k, v in saved["data"].items() if k not in ("synth", "train_free", "free_sentences")}
    config = TrainConfig.from_dict({**saved, "data": data})
    assert config.data.data_dir is None and config.data == DataConfig(**data)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config  # and a new one round-trips


def test_data_dir_flag_reaches_the_data_config_and_the_help_names_the_default(capsys):
    script = _train_script()
    assert script.config_from_args(script.parse_args([])).data.data_dir is None
    assert script.config_from_args(script.parse_args(["--data-dir", "/big/disk"])).data.data_dir == "/big/disk"
    with pytest.raises(SystemExit):
        script.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--data-dir" in text and f"${DATA_DIR_ENV}" in text and "data/ in the working directory" in text


def test_skipped_clips_carry_their_clip_id_and_split(tmp_path, monkeypatch):
    """`lipnet-ko evaluate` lists every test clip it could not score by id: a clip that failed cropping and one
    whose crops could not be loaded both name their clip and the split they belong to."""
    clips = [Clip(tmp_path / f"{name}.mp4", text="공을 위에 놓아", clip_id=name) for name in ("ok", "no_face")]

    def run_batch(clips, out_dir, config, jobs=1, progress=True):
        return [{"status": "done"}, {"status": "failed", "reason": "NoFaceError: no face found"}], False

    monkeypatch.setattr(run_data, "run_batch", run_batch)
    skipped: list[dict] = []
    done = _preprocess(clips, tmp_path, PreprocessConfig(), 1, False, skipped, split="seen")
    assert done == [(tmp_path / "ok.npz", "ok")]
    assert skipped == [{"clip_id": "no_face", "reason": "NoFaceError: no face found", "split": "seen"}]
    (tmp_path / "ok.npz").write_bytes(b"PK\x03\x04 half a zip")  # crops on disk that cannot be read
    examples, rejected = _load(done, JamoTokenizer(), split="unseen")
    assert examples == [] and len(rejected) == 1
    assert rejected[0]["clip_id"] == "ok" and rejected[0]["split"] == "unseen"
    assert rejected[0]["path"] == str(tmp_path / "ok.npz") and "unreadable preprocessed clip" in rejected[0]["reason"]


def test_a_corpus_rendered_straight_to_crops_is_read_from_its_own_crops_whatever_cache_dir_says(tmp_path, caplog):
    # Training (prepare_data) and `lipnet-ko evaluate --data` (corpus_examples) both ask _cache_dir: a crops-only
    # synthetic corpus has no videos to crop into another folder.
    from lipnet_ko.synth.corpus import crops_dir

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "synth.json").write_text(json.dumps({"config": {"output": "crops"}}), encoding="utf-8")
    spec = f"synthetic:{corpus}"
    elsewhere = DataConfig(spec=spec, cache_dir=str(tmp_path / "elsewhere"))
    with caplog.at_level("WARNING", logger="lipnet_ko.training.run_data"):
        assert run_data._cache_dir(elsewhere, corpus, spec) == crops_dir(corpus)
    assert "is not used" in caplog.text
    assert run_data._cache_dir(DataConfig(spec=spec), corpus, spec) == crops_dir(corpus)
    (corpus / "synth.json").write_text(json.dumps({"config": {"output": "video"}}), encoding="utf-8")
    assert run_data._cache_dir(elsewhere, corpus, spec) == tmp_path / "elsewhere"  # videos: cropped where asked
