"""The data of a run: how the synthetic default's test splits are separated (closed vs open vocabulary)."""

from __future__ import annotations

import numpy as np
import pytest

from lipnet_ko.datasets import Clip
from lipnet_ko.sentences import load_free_sentences, load_grammar
from lipnet_ko.synth import SynthConfig
from lipnet_ko.tokenizer import JamoTokenizer
from lipnet_ko.training_data import EVAL_SPLITS, DataConfig, _check_unique_ids, _separate_free_sentences, prepare_data


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
    assert [c.text for c in with_free["free"]] == [other[2], other[0]]  # the held-out free set, then seen speakers' free sentences
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
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("train_script", Path(__file__).resolve().parents[1] / "train.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
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
