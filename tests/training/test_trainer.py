"""Training: learning-rate plan, monitor, config round trip, a whole tiny run, and kill + resume."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import lipnet_ko  # noqa: F401
from lipnet_ko.model.run_folder import RunFolder
from lipnet_ko.synth.corpus import SynthConfig
from lipnet_ko.training.config import TrainConfig
from lipnet_ko.training.run_data import DataConfig
from lipnet_ko.training.trainer import Monitor, learning_rate_at, plan_epochs

REPO = Path(__file__).resolve().parents[2]
# Corpus v4 in little: two training identities, one unseen (the held-out photo), open sentences, crops straight from the renderer.
TINY_SYNTH = SynthConfig(speakers=2, sentences=6, val_sentences=2, unseen_sentences=2, held_out_speakers=1,
                         unseen_speaker_sentences=3, sentences_per_session=4, max_syllables=12, seed=5)


def tiny_config(corpus: Path, **overrides) -> TrainConfig:
    data = DataConfig(spec=f"synthetic:{corpus}", jobs=1)  # its crops are in corpus-crops, rendered with the corpus
    values = dict(
        data=data, preset="tiny", batch_size=2, epochs=2, learning_rate=1e-3, warmup_steps=2, max_minutes=None,
        augment=None, checkpoint_every=2, val_clips=4, beam_width=4,
    )
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from lipnet_ko.synth.corpus import generate_corpus

    out = tmp_path_factory.mktemp("train") / "corpus"
    generate_corpus(out, TINY_SYNTH)
    return out


# ---------------------------------------------------------------- pure parts


def test_learning_rate_warms_up_then_decays_to_the_floor():
    config = TrainConfig(learning_rate=1e-3, warmup_steps=10, min_learning_rate=1e-5, schedule="cosine")
    rates = [learning_rate_at(config, s, 110, 0) for s in range(111)]
    assert rates[0] == pytest.approx(1e-4) and rates[9] == pytest.approx(1e-3)
    assert all(a <= b for a, b in zip(rates[:10], rates[1:10]))  # warm-up rises
    assert all(a >= b for a, b in zip(rates[10:], rates[11:]))  # cosine only falls
    assert rates[60] == pytest.approx((1e-3 + 1e-5) / 2, rel=1e-6)  # half way
    assert rates[110] == pytest.approx(1e-5)


def test_time_budget_drives_the_cosine_when_it_is_ahead_of_the_step_plan():
    config = TrainConfig(learning_rate=1e-3, warmup_steps=10, min_learning_rate=1e-5, schedule="cosine")
    by_steps = learning_rate_at(config, 20, 110, 0)
    assert learning_rate_at(config, 20, 110, 0, time_share=0.0) == by_steps
    assert learning_rate_at(config, 20, 110, 0, time_share=0.5) == pytest.approx((1e-3 + 1e-5) / 2, rel=1e-6)
    assert learning_rate_at(config, 20, 110, 0, time_share=1.3) == pytest.approx(1e-5)  # budget spent: the floor
    assert learning_rate_at(config, 100, 110, 0, time_share=0.1) == learning_rate_at(config, 100, 110, 0)  # steps ahead
    assert learning_rate_at(config, 5, 110, 0, time_share=0.9) == pytest.approx(6e-4)  # warm-up is by steps only


def test_epoch_plan_fills_the_time_budget_and_ignores_the_first_epochs_tracing():
    config = TrainConfig(max_minutes=20, epochs=60)  # 1,200 s, up to 1,260 s for the last epoch
    assert plan_epochs(config, 1, 150.0, [150.0]) == 1 + int(1110 / 150)  # only the first epoch known
    # the first epoch paid for tracing; later ones take 120 s: (1260 - 390) / 120 = 7.25 more
    assert plan_epochs(config, 3, 390.0, [150.0, 120.0, 120.0]) == 3 + 7
    assert plan_epochs(config, 10, 1230.0, [150.0] + [120.0] * 9) == 10  # nothing more fits
    assert plan_epochs(config, 3, 390.0, [150.0, 500.0, 120.0, 120.0, 120.0][:3]) == 3 + int(870 / 310)  # median of recent
    assert plan_epochs(TrainConfig(max_minutes=20, epochs=5), 1, 10.0, [10.0]) == 5  # never past --epochs
    assert plan_epochs(TrainConfig(max_minutes=None, epochs=7), 1, 10.0, [10.0]) == 7


def test_plateau_schedule_cuts_the_rate_per_reduction():
    config = TrainConfig(learning_rate=1e-3, warmup_steps=0, schedule="plateau", plateau_factor=0.5)
    assert learning_rate_at(config, 50, 100, 0) == pytest.approx(1e-3)
    assert learning_rate_at(config, 50, 100, 2) == pytest.approx(2.5e-4)


def test_monitor_tracks_best_cuts_and_stops():
    config = TrainConfig(schedule="plateau", plateau_patience=2, early_stop_patience=3)
    m = Monitor()
    assert m.update(0, 0.9, config)["improved"]
    assert not m.update(1, 0.95, config)["cut_rate"]
    assert m.update(2, 0.91, config)["cut_rate"] and m.cuts == 1
    assert m.update(3, 0.92, config)["stop"]
    assert m.best == 0.9 and m.best_epoch == 0


def test_config_round_trips_through_json(tmp_path):
    config = TrainConfig(model={"gru_units": 32}, learning_rate=5e-4, data=DataConfig(spec="grid:/x", tokenizer="char"))
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config.to_dict()))
    assert TrainConfig.from_json(path) == config


def test_resume_refuses_other_training_clips(tmp_path):
    from lipnet_ko.training.trainer import check_same_training_data
    from lipnet_ko.training.run_data import RunData, write_run_splits

    def data(ids):
        return RunData({"train": []}, {"train": ids, "val": []}, [], "synthetic:x")

    check_same_training_data(tmp_path, data(["a"]))  # no splits.json: nothing to compare
    write_run_splits(RunFolder(tmp_path).splits_json, data(["a", "b"]))
    check_same_training_data(tmp_path, data(["a", "b"]))
    with pytest.raises(ValueError, match=r"other training clips than the data has now \(2 then, 2 now; 1 gone, 1 new\)"):
        check_same_training_data(tmp_path, data(["a", "c"]))


def test_resume_builds_the_network_the_run_saved_not_the_preset_of_today(tmp_path, caplog):
    from lipnet_ko.model.inference import write_side_files
    from lipnet_ko.model.config import model_config
    from lipnet_ko.video.extract import PreprocessConfig
    from lipnet_ko.text.tokenizer import JamoTokenizer
    from lipnet_ko.training.trainer import _saved_model_config

    today = model_config("small")
    assert _saved_model_config(tmp_path, today) == today  # no model_config.json yet: the preset
    before = today.to_dict()
    del before["pool_last"]  # model_config.json of a run from before the field: small pooled its last block
    RunFolder(tmp_path).model_config_json.write_text(json.dumps(before))
    with caplog.at_level("WARNING", logger="lipnet_ko.training.trainer"):
        saved = _saved_model_config(tmp_path, today)
    assert saved.pool_last is True and today.pool_last is False
    assert "pool_last" in caplog.text
    write_side_files(tmp_path, today, JamoTokenizer(), PreprocessConfig())
    assert _saved_model_config(tmp_path, today) == today


@pytest.mark.parametrize(
    "overrides, message",
    [({"schedule": "linear"}, "schedule"), ({"strategy": "tpu"}, "strategy"), ({"preset": "huge"}, "preset"),
     ({"model": {"gru_unitz": 3}}, "unknown model field"), ({"batch_size": 0}, "batch_size")],
)
def test_bad_config_fails_early_with_a_clear_message(overrides, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**overrides)


def test_unknown_config_field_in_json_is_rejected(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"learning_rat": 1}))
    with pytest.raises(ValueError, match="learning_rat"):
        TrainConfig.from_json(path)


# ---------------------------------------------------------------- a whole run


def _recomputed_figures(run: RunFolder, config: TrainConfig) -> dict:
    """``{split: {decoder: figures}}`` of the run's ``model.keras`` on its seen and unseen clips, decoded again and
    scored with the ``lipnet_ko.text.metrics`` functions themselves (not ``score_corpus``, which the run used)."""
    from lipnet_ko.decoding.lm import load_default_lm
    from lipnet_ko.model.inference import load_recognizer
    from lipnet_ko.text.metrics import bleu, cer, jamo_cer, viseme_cer, wer
    from lipnet_ko.training.evaluation import decode_logits, standard_decoders
    from lipnet_ko.training.run_data import prepare_data

    recognizer = load_recognizer(run.path)
    data = prepare_data(config.data, recognizer.tokenizer, recognizer.preprocess, progress=False)
    saved = json.loads(run.splits_json.read_text())["splits"]
    figures = {}
    for split in ("unseen_sentences", "unseen_speakers"):
        examples = data.splits[split]
        assert [e.clip_id for e in examples] == saved[split]  # the clips the run scored
        logits = recognizer.example_logits(examples)
        references = [e.text for e in examples]
        figures[split] = {}
        for name, options in standard_decoders(config.beam_width, load_default_lm()).items():
            hypotheses = decode_logits(logits, recognizer.tokenizer, options)
            figures[split][name] = {"syllable_cer": cer(references, hypotheses), "jamo_cer": jamo_cer(references, hypotheses),
                                    "viseme_cer": viseme_cer(references, hypotheses),
                                    "wer": wer(references, hypotheses), "bleu": bleu(references, hypotheses),
                                    "utterances": len(examples)}
    return figures


def _check_oracle_floor(metrics: dict, run: RunFolder, config: TrainConfig) -> None:
    """The floor the run printed is the beam decoders on perfect-viseme logits of each test split's sentences."""
    from lipnet_ko.decoding.lm import load_default_lm
    from lipnet_ko.decoding.oracle import oracle_floor
    from lipnet_ko.text.tokenizer import JamoTokenizer
    from lipnet_ko.training.evaluation import standard_decoders

    texts = {}
    for split in ("unseen_sentences", "unseen_speakers"):
        ids = json.loads(run.splits_json.read_text())["splits"][split]
        crops = Path(f"{config.data.spec.partition(':')[2]}-crops")
        texts[split] = [str(np.load(crops / f"{clip_id}.npz")["text"]) for clip_id in ids]
    decoders = {k: v for k, v in standard_decoders(config.beam_width, load_default_lm()).items() if k != "greedy"}
    assert set(metrics["oracle_floor"]) == set(texts)
    for split, sentences in texts.items():
        floor = oracle_floor(sentences, JamoTokenizer(), decoders)
        assert set(metrics["oracle_floor"][split]) == {"beam", "beam_lm"}
        for decoder, scores in floor.items():
            saved = metrics["oracle_floor"][split][decoder]
            assert saved["utterances"] == len(sentences) and saved["syllable_cer"] == pytest.approx(scores.cer, abs=1e-5)
            assert saved["viseme_cer"] == pytest.approx(scores.viseme_cer, abs=1e-5)


@pytest.mark.dlib
def test_tiny_run_writes_a_complete_run_folder(corpus, tmp_path):
    from lipnet_ko.training.trainer import train

    config = tiny_config(corpus)
    result = train(config, tmp_path / "run", progress=False)
    run = RunFolder(result.run_dir)
    for path in (run.config_json, *run.side_files, run.splits_json, run.state_json, run.log_csv, run.train_log,
                 run.model_keras, run.metrics_json, run.best_weights):
        assert path.is_file(), path
    assert any(run.tensorboard.iterdir())
    assert [p.name for p in run.resume_checkpoints()] == [json.loads(run.state_json.read_text())["checkpoint"]]
    assert TrainConfig.from_json(run.config_json) == config
    metrics = json.loads(run.metrics_json.read_text())
    assert metrics == result.metrics
    assert set(metrics) >= {"unseen_sentences", "unseen_speakers", "oracle_floor", "kept_checkpoint", "final_checkpoint",
                            "training"}  # fmt: skip
    assert "seen" not in metrics and "unseen" not in metrics  # corpus v4 names its own test splits
    recomputed = _recomputed_figures(run, config)
    for split in ("unseen_sentences", "unseen_speakers"):
        assert set(metrics[split]) == {"greedy", "beam", "beam_lm"}
        for decoder, expected in recomputed[split].items():
            figures = metrics[split][decoder]
            assert figures["utterances"] == expected["utterances"] >= 1
            for name in ("syllable_cer", "jamo_cer", "viseme_cer", "wer"):
                assert 0.0 <= figures[name] <= 2.0, (split, decoder, name)
                assert figures[name] == pytest.approx(expected[name], abs=1e-5), (split, decoder, name)
            assert figures["bleu"] == pytest.approx(expected["bleu"], abs=1e-3), (split, decoder)
    with open(run.log_csv, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1]  # one row per epoch
    val_cers = [float(r["val_cer"]) for r in rows]
    kept = metrics["kept_checkpoint"]
    assert kept["val_syllable_cer"] == val_cers[kept["epoch"] - 1]  # the kept model is the epoch log.csv scored best
    assert all(v >= kept["val_syllable_cer"] - 1e-4 for v in val_cers)
    assert metrics["training"]["steps"] == result.state.step == int(rows[-1]["step"])
    assert metrics["training"]["epochs"] == 2
    splits = json.loads(run.splits_json.read_text())["splits"]
    train_ids, held = set(splits["train"]), {i for name, ids in splits.items() if name != "train" for i in ids}
    assert train_ids and held and not train_ids & held
    _check_oracle_floor(metrics, run, config)
    with pytest.raises(ValueError, match="already holds a run"):
        train(config, run.path, progress=False)


@pytest.mark.dlib
def test_mirrored_strategy_trains_like_the_default_one(corpus, tmp_path):
    # One CPU here, so MirroredStrategy holds a single replica: its step (strategy.run, all-reduce,
    # synchronized batch norm) must then give the default strategy's weights.
    from lipnet_ko.training.trainer import train

    weights = {}
    for strategy in ("default", "mirrored"):
        config = tiny_config(corpus, epochs=1, strategy=strategy)
        result = train(config, tmp_path / strategy, progress=False)
        weights[strategy], state = _last_checkpoint(result.run_dir)
        assert state["step"] > 0 and RunFolder(result.run_dir).metrics_json.is_file()
        _assert_trained_from_initial_weights(result.run_dir, weights[strategy], state, config)
    assert weights["default"].keys() == weights["mirrored"].keys()
    for name, value in weights["default"].items():
        np.testing.assert_allclose(weights["mirrored"][name], value, atol=1e-5, err_msg=name)


def test_resume_without_a_run_is_a_clear_error(tmp_path):
    from lipnet_ko.training.trainer import train

    with pytest.raises(ValueError, match="no run to resume"):
        train(TrainConfig(), tmp_path / "nothing", resume=True)


# ---------------------------------------------------------------- kill -9 and --resume


def _train_cmd(config_path: Path, run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, str(REPO / "train.py"), "--config", str(config_path), "--run-dir", str(run_dir), "--quiet", *extra]


def _last_checkpoint(run_dir: Path) -> tuple[dict[str, np.ndarray], dict]:
    run = RunFolder(run_dir)
    state = json.loads(run.state_json.read_text())
    with np.load(run.checkpoints / state["checkpoint"]) as archive:
        return {k: archive[k] for k in archive.files}, state


def _initial_variables(run_dir: Path, seed: int) -> list[tuple[str, np.ndarray, bool]]:
    """``(path, value, trainable)`` of every model variable, in checkpoint order, as a run of ``seed`` starts:
    the trainer seeds Keras and then builds the network of the run's ``model_config.json``."""
    import keras

    from lipnet_ko.model.config import ModelConfig
    from lipnet_ko.model.network import build_model

    keras.utils.set_random_seed(seed)
    model = build_model(ModelConfig.from_dict(json.loads(RunFolder(run_dir).model_config_json.read_text())), frames=8)
    trainable = {id(v) for v in model.trainable_variables}
    return [(v.path, np.asarray(v.numpy()), id(v) in trainable) for v in model.variables]


def _assert_trained_from_initial_weights(run_dir: Path, weights: dict[str, np.ndarray], state: dict, config: TrainConfig) -> None:
    """Every trainable variable of the checkpoint ``weights`` moved away from the run's initial value, and by no more
    than Adam moves a weight in ``state["step"]`` steps at rates up to ``learning_rate`` (about one rate a step; the
    bound allows twice that). A network that did not train fails the first; initial weights of another seed, or
    another network, differ by the weights' own scale and fail the second."""
    initial = _initial_variables(run_dir, config.seed)
    assert len(initial) == len([k for k in weights if k.startswith("model_")])
    bound = 2 * config.learning_rate * state["step"]
    for i, (path, value, trainable) in enumerate(initial):
        assert weights[f"model_{i}"].shape == value.shape, path
        if trainable:
            moved = float(np.abs(weights[f"model_{i}"] - value).max())
            assert 0 < moved <= bound, f"{path}: moved {moved:.3g} from its initial value (bound {bound:.3g})"


@pytest.mark.dlib
def test_killed_run_resumes_to_the_same_weights_as_an_uninterrupted_one(corpus, tmp_path):
    from lipnet_ko.text.tokenizer import JamoTokenizer
    from lipnet_ko.training.run_data import prepare_data

    config = tiny_config(corpus, epochs=3, model={"dropout": 0.3}, augment={})
    prepare_data(config.data, JamoTokenizer(), progress=False)  # crops once, outside the timed processes
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config.to_dict()))
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "-1"}

    straight = tmp_path / "straight"
    subprocess.run(_train_cmd(config_path, straight), check=True, env=env, capture_output=True)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_train_cmd(config_path, killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    state = None
    while time.time() < deadline and proc.poll() is None:
        try:
            state = json.loads(RunFolder(killed).state_json.read_text())
        except (OSError, ValueError):
            state = None
        if state and state["step"] >= 2 and state["epoch"] == 1 and state["batch"] > 0:  # mid-epoch 2
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed mid-epoch"
    assert not RunFolder(killed).metrics_json.exists()
    subprocess.run(_train_cmd(config_path, killed, "--resume"), check=True, env=env, capture_output=True)

    a, state_a = _last_checkpoint(straight)
    b, state_b = _last_checkpoint(killed)
    assert state_a["step"] == state_b["step"] and state_a["epoch"] == state_b["epoch"] == 3
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=1e-5, err_msg=key)
    rows = RunFolder(killed).log_csv.read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1", "2"]  # no epoch logged twice
    assert math.isclose(
        json.loads(RunFolder(straight).metrics_json.read_text())["unseen_speakers"]["greedy"]["syllable_cer"],
        json.loads(RunFolder(killed).metrics_json.read_text())["unseen_speakers"]["greedy"]["syllable_cer"],
    )


# ---------------------------------------------------------------- slow: two workers, real GRID video


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.dlib
def test_two_multiworker_processes_end_with_identical_weights(corpus, tmp_path):
    from lipnet_ko.text.tokenizer import JamoTokenizer
    from lipnet_ko.training.run_data import prepare_data

    config = tiny_config(corpus, epochs=1, strategy="multiworker")
    prepare_data(config.data, JamoTokenizer(), progress=False)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config.to_dict()))
    workers = [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        env = {**os.environ, "TF_CONFIG": tf_config, "CUDA_VISIBLE_DEVICES": "-1"}
        procs.append(subprocess.Popen(_train_cmd(config_path, tmp_path / f"worker{index}"), env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    a, state_a = _last_checkpoint(tmp_path / "worker0")
    b, state_b = _last_checkpoint(tmp_path / "worker1")
    assert state_a["step"] == state_b["step"] > 0
    weights = [k for k in a if k.startswith("model_")]
    for key in weights:
        np.testing.assert_allclose(a[key], b[key], atol=1e-6, err_msg=key)
    _assert_trained_from_initial_weights(tmp_path / "worker0", a, state_a, config)


@pytest.mark.slow
@pytest.mark.dlib
def test_overfits_the_real_grid_clips_below_5_percent_cer(grid_dir, tmp_path):
    """Learning on real video: the eight GRID clips, English characters, train = test."""
    from lipnet_ko.training.trainer import train

    data = DataConfig(spec=f"grid:{grid_dir}", tokenizer="char", cache_dir=str(tmp_path / "crops"), val_share=0.0,
                      seen_share=0.0, unseen_share=0.0, jobs=2)
    config = TrainConfig(data=data, preset="small", model={"dropout": 0.0}, batch_size=8, epochs=500, learning_rate=3e-3,
                         warmup_steps=20, max_minutes=None, augment=None, early_stop_patience=0, val_clips=8)
    from lipnet_ko.training.evaluation import evaluate, standard_decoders
    from lipnet_ko.text.tokenizer import CharTokenizer
    from lipnet_ko.training.run_data import prepare_data

    run_data = prepare_data(data, CharTokenizer(), progress=False)
    assert len(run_data.splits["train"]) == 8
    run_data.splits["val"] = run_data.splits["train"]  # pick the checkpoint on the clips it must memorise
    result = train(config, tmp_path / "run", progress=False, data=run_data)
    from lipnet_ko.model.inference import load_recognizer

    scores = evaluate(load_recognizer(result.run_dir), run_data.splits["train"], {"greedy": standard_decoders()["greedy"]})
    cer = scores.scores["greedy"].cer
    assert cer < 0.05, f"CER {cer:.3f} on the training clips: {list(zip(scores.references, scores.hypotheses['greedy']))}"


@pytest.mark.slow
@pytest.mark.dlib
def test_resident_memory_stays_flat_over_five_epochs_with_streamed_clips(corpus, tmp_path):
    """RSS grows < 5% from epoch 2 to epoch 5, with crops streamed from .npz (the large-corpus path)."""
    from lipnet_ko.training.trainer import train

    config = tiny_config(corpus, preset="small", epochs=5, cache_limit_gb=0.0, augment={})
    result = train(config, tmp_path / "run", progress=False)
    rss = [row["rss_mb"] for row in result.state.history]
    assert len(rss) == 5 and all(r is not None for r in rss)
    assert rss[4] < 1.05 * rss[1], rss


@pytest.mark.parametrize("batch", [0, 3])
def test_finish_run_keeps_the_best_weights_even_when_the_last_epoch_was_cut_short(tmp_path, batch):
    """The last finished epoch was the best; ``batch`` more steps ran before the time budget ended the run mid-epoch.
    model.keras must hold the best checkpoint's weights, not those unvalidated steps' (unless there were none)."""
    import keras

    from lipnet_ko.model.config import model_config
    from lipnet_ko.model.inference import keras_recognizer
    from lipnet_ko.model.network import build_model
    from lipnet_ko.model.run_folder import RunFolder
    from lipnet_ko.text.tokenizer import CharTokenizer
    from lipnet_ko.training.config import TrainConfig
    from lipnet_ko.training.run_data import RunData
    from lipnet_ko.training.trainer import Monitor, TrainState, finish_run
    from lipnet_ko.video.extract import PreprocessConfig

    tokenizer = CharTokenizer()
    keras.utils.set_random_seed(0)
    model = build_model(model_config("tiny", height=24, width=48, vocabulary_size=tokenizer.vocab_size), frames=8)
    run = RunFolder(tmp_path / "run")
    run.checkpoints.mkdir(parents=True)
    best = [w.copy() for w in model.get_weights()]
    model.save_weights(run.best_weights)
    model.set_weights([w + 0.5 for w in best])  # what the steps after the best epoch did
    state = TrainState(epoch=2, batch=batch, step=20 + batch, monitor=Monitor(best=0.5, best_epoch=1))
    data = RunData(splits={}, clip_ids={}, skipped=[], corpus="none")
    recognizer = keras_recognizer(model, tokenizer, PreprocessConfig(), run.path)
    metrics = finish_run(run, recognizer, data, TrainConfig(data={"tokenizer": "char"}), state)
    kept = keras.saving.load_model(run.model_keras).get_weights()
    expected = best if batch else [w + 0.5 for w in best]  # no extra steps: the weights in memory are the best
    assert all(np.allclose(a, b) for a, b in zip(kept, expected))
    assert ("same_as_kept" in metrics["final_checkpoint"]) == (batch == 0)


def test_a_checkpoint_write_that_fails_leaves_no_file_behind(tmp_path, monkeypatch):
    import keras

    from lipnet_ko.model.config import model_config
    from lipnet_ko.model.network import build_model
    from lipnet_ko.training.trainer import save_checkpoint

    model = build_model(model_config("tiny", height=24, width=48, vocabulary_size=11), frames=8)
    optimizer = keras.optimizers.Adam()
    folder = tmp_path / "checkpoints"

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(folder / "ckpt-0000001.npz", model, optimizer)
    assert list(folder.iterdir()) == []  # neither the checkpoint nor its temporary file
