"""The data of a run: how the synthetic default's test splits are separated (closed vs open vocabulary)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lipnet_ko.data.clips import Clip
from lipnet_ko.text.sentences import load_free_sentences, load_grammar
from lipnet_ko.synth.corpus import SynthConfig
from lipnet_ko.text.tokenizer import JamoTokenizer
from lipnet_ko.files import DATA_DIR_ENV
from lipnet_ko.synth.corpus import SYNTH_VERSION
from lipnet_ko.training import run_data
from lipnet_ko.training.run_data import (
    EVAL_SPLITS,
    DataConfig,
    _check_unique_ids,
    _load,
    _preprocess,
    _separate_free_sentences,
    prepare_data,
    synthetic_dirs,
)
from lipnet_ko.video.extract import PreprocessConfig

FIXTURE_RUN = Path(__file__).resolve().parents[1] / "fixtures" / "run-0.1.0"


def _train_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_script", Path(__file__).resolve().parents[2] / "train.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_synthetic_test_splits_keep_grammar_sentences_and_move_free_ones():
    grammar = load_grammar()
    command, other = grammar.sample(np.random.default_rng(0), 4), load_free_sentences()[:3]

    def clips(texts, speaker):
        return [Clip(f"{speaker}_{i}.mp4", text=t, speaker=speaker, clip_id=f"{speaker}_{i}") for i, t in enumerate(texts)]

    held_free = clips(other[2:], "C001")
    splits = {"train": [], "val": clips(other[:1], "C002"), "seen": clips(command[:2] + other[:1], "C001"),
              "unseen": clips(command[2:] + other[1:2], "C040"), "free": held_free}  # fmt: skip
    splits["train"] = clips(command[:1] + other[:2], "C003")
    with_free = {name: list(items) for name, items in splits.items()}
    _separate_free_sentences(with_free, train_free=True)
    assert [c.text for c in with_free["seen"]] == command[:2]
    assert [c.text for c in with_free["unseen"]] == command[2:]
    # the held-out free set, then seen speakers' free sentences
    assert [c.text for c in with_free["free"]] == [other[2], other[0]]
    assert [c.text for c in with_free["unseen_free"]] == [other[1]]
    assert [c.text for c in with_free["val"]] == other[:1]  # training and validation stay as drawn
    assert [c.text for c in with_free["train"]] == command[:1] + other[:2]
    assert set(EVAL_SPLITS) == {"seen", "unseen", "free", "unseen_free"}

    _separate_free_sentences(splits, train_free=False)  # the default: free sentences leave train and val
    assert [c.text for c in splits["train"]] == command[:1]
    assert splits["val"] == []
    for name in ("seen", "unseen", "free", "unseen_free"):  # the test splits are the same either way
        assert splits[name] == with_free[name], name


def test_train_free_flag_reaches_the_data_config():
    script = _train_script()
    assert script.config_from_args(script.parse_args([])).data.train_free is False
    assert script.config_from_args(script.parse_args(["--train-free"])).data.train_free is True
    assert DataConfig().train_free is False


@pytest.mark.dlib
def test_free_split_reads_the_free_corpus_under_ids_of_its_own(tmp_path):
    # The free-sentence corpus has the main corpus's speakers and naming scheme. Both used to be cropped
    # into one cache, so the free split silently loaded the main corpus's clips of the same names (mostly
    # training sentences); later its ids still equalled main-corpus ids, and `lipnet-ko evaluate` refused
    # the report ("listed twice"). Each corpus now has its own cache, and free sessions are numbered from 101.
    synth = SynthConfig(speakers=3, sentences=4, sentences_per_session=2, held_out_speakers=1, seed=7)
    config = DataConfig(synth=synth, synth_dir=str(tmp_path / "corpus"), free_sentences=2, jobs=1, val_share=0.0, seen_share=0.0)
    data = prepare_data(config, JamoTokenizer(), progress=False)
    free = data.splits["free"]
    assert len(free) == 2 * 2  # two training speakers, two held-out free sentences each
    grammar = load_grammar()
    train_texts = {e.text for e in data.splits["train"]}
    for example in free:
        assert example.crops_path.parent == tmp_path / "corpus-free-crops"
        assert not grammar.contains(example.text) and example.text not in train_texts
        assert example.text == str(np.load(example.crops_path)["text"])
        assert "_A_10" in example.clip_id  # session 101, 102, ...
    every_id = [clip_id for ids in data.clip_ids.values() for clip_id in ids]
    assert len(every_id) == len(set(every_id)) == sum(len(v) for v in data.splits.values())
    assert data.clip_ids["free"] == [e.clip_id for e in free]


def test_two_clips_with_one_id_are_refused_with_the_splits_named():
    _check_unique_ids({"train": ["a", "b"], "seen": ["c"], "free": ["d"]})  # all distinct: fine
    with pytest.raises(ValueError, match=r"clip id 'c' names two clips \(splits 'seen' and 'free'\)"):
        _check_unique_ids({"train": ["a", "b"], "seen": ["c"], "free": ["d", "c"]})


def test_synthetic_default_is_generated_under_the_working_directory(tmp_path, monkeypatch):
    # It used to sit beside the package (lipnet_ko/../data): for an installed wheel, site-packages' parent.
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    main, free = synthetic_dirs(DataConfig())
    assert main == tmp_path.absolute() / "data" / "synth" / f"default-v{SYNTH_VERSION}"
    assert free == main.with_name(main.name + "-free")


def test_data_folder_comes_from_the_config_then_the_environment_and_synth_dir_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "env"))
    assert synthetic_dirs(DataConfig())[0] == tmp_path / "env" / "synth" / f"default-v{SYNTH_VERSION}"
    config = DataConfig(data_dir=str(tmp_path / "flag"))
    assert synthetic_dirs(config)[0] == tmp_path / "flag" / "synth" / f"default-v{SYNTH_VERSION}"
    exact = DataConfig(data_dir=str(tmp_path / "flag"), synth_dir=str(tmp_path / "mine"))
    assert synthetic_dirs(exact) == (tmp_path / "mine", tmp_path / "mine-free")


def test_saved_run_configs_without_a_data_folder_still_load():
    from lipnet_ko.training.config import TrainConfig

    saved = json.loads((FIXTURE_RUN / "config.json").read_text(encoding="utf-8"))
    assert "data_dir" not in saved["data"]  # written before the field existed
    config = TrainConfig.from_json(FIXTURE_RUN / "config.json")
    assert config.data.data_dir is None and config.data == DataConfig(**saved["data"])
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
