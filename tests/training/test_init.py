"""Fine-tuning: ``TrainConfig.init_from`` (``--init RUN``) and ``freeze_frontend_epochs``.

Runs train on a handful of random in-memory clips (no corpus, no dlib) with the tiny preset at 24x48 crops;
the source of every ``--init`` is one such run, trained for an epoch, so its batch-norm statistics are its own.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import lipnet_ko  # noqa: F401
from lipnet_ko.data.batching import Example
from lipnet_ko.model.config import model_config
from lipnet_ko.model.run_folder import RunFolder
from lipnet_ko.text.tokenizer import CharTokenizer, JamoTokenizer
from lipnet_ko.training.config import TrainConfig
from lipnet_ko.training.run_data import DataConfig, RunData

HEIGHT, WIDTH = 24, 48  # px: crops small enough for a fast step, large enough for the tiny preset's pools
FRAMES = 10
TEXTS = ("가나", "다라", "마바 사", "아자", "차카", "타파 하", "나무", "바다")  # six training clips, two validation


def memory_data() -> RunData:
    """Six training and two validation clips of random crops, held in memory."""
    rng = np.random.default_rng(0)
    tokenizer = JamoTokenizer()
    examples = [Example(None, tuple(tokenizer.encode(text)), FRAMES, text=text, clip_id=f"clip{i}",
                        crops=rng.integers(0, 256, (FRAMES, HEIGHT, WIDTH, 3), dtype=np.uint8))
                for i, text in enumerate(TEXTS)]  # fmt: skip
    splits = {"train": examples[:6], "val": examples[6:]}
    return RunData(splits, {name: [e.clip_id for e in split] for name, split in splits.items()}, [], "memory")


def tiny(**overrides) -> TrainConfig:
    model = {"height": HEIGHT, "width": WIDTH, **overrides.pop("model", {})}
    values = dict(data=DataConfig(spec="synthetic:/nowhere"), preset="tiny", model=model, batch_size=2, epochs=1,
                  learning_rate=1e-3, warmup_steps=1, max_minutes=None, augment=None, checkpoint_every=1, val_clips=2,
                  beam_width=2, early_stop_patience=0)  # fmt: skip
    values.update(overrides)
    return TrainConfig(**values)


def no_lm(patch: pytest.MonkeyPatch) -> None:
    # These runs have no test split, so their beam decoders never run: skip loading the default LM (seconds).
    patch.setattr("lipnet_ko.decoding.lm.default_lm_for", lambda tokenizer: None)


@pytest.fixture(autouse=True)
def _no_lm(monkeypatch):
    no_lm(monkeypatch)


@pytest.fixture(scope="module")
def source_run(tmp_path_factory) -> Path:
    """A finished one-epoch run: what --init starts from."""
    from lipnet_ko.training.trainer import train

    with pytest.MonkeyPatch.context() as patch:
        no_lm(patch)
        return train(tiny(), tmp_path_factory.mktemp("init") / "source", progress=False, data=memory_data()).run_dir


def fixed_input() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, (2, FRAMES, HEIGHT, WIDTH, 3), dtype=np.uint8), np.array([FRAMES, 6], np.int32)


def started_trainer(config: TrainConfig, run_dir: Path):
    """A new run set up as ``train`` sets it up (init weights loaded), stopped before its first step."""
    from lipnet_ko.training.trainer import _Trainer, find_init_model

    init = find_init_model(config, JamoTokenizer()) if config.init_from else None
    run_dir.mkdir(parents=True)
    return _Trainer(config, RunFolder(run_dir), False, False, memory_data(), init)


def weights_of(model, frontend: bool) -> dict[str, np.ndarray]:
    """The frontend's (STCNN) weights, batch-norm statistics included, or every other weight; by path below the model."""
    from lipnet_ko.training.trainer import frontend_layers

    ids = {id(w) for layer in frontend_layers(model) for w in layer.weights}
    return {w.path.removeprefix(f"{model.name}/"): np.array(w.numpy()) for w in model.weights if (id(w) in ids) == frontend}


def source_weights(source_run: Path, frontend: bool) -> dict[str, np.ndarray]:
    import keras

    return weights_of(keras.saving.load_model(RunFolder(source_run).model_keras), frontend)


# ---------------------------------------------------------------- loading the weights


def test_a_new_run_starts_with_the_source_models_logits_exactly(source_run, tmp_path):
    from lipnet_ko.model.inference import load_recognizer

    crops, crop_lengths = fixed_input()
    expected = load_recognizer(source_run).predict(crops, crop_lengths)
    trainer = started_trainer(tiny(seed=1, init_from=str(source_run)), tmp_path / "init")
    np.testing.assert_array_equal(trainer.recognizer.predict(crops, crop_lengths), expected)
    assert len(trainer.model.weights) == len(weights_of(trainer.model, True)) + len(weights_of(trainer.model, False))
    random = started_trainer(tiny(seed=1), tmp_path / "random")  # the same run without --init
    assert not np.allclose(random.recognizer.predict(crops, crop_lengths), expected, atol=1e-3)


def test_the_run_records_what_it_started_from(source_run, tmp_path, monkeypatch):
    from lipnet_ko.training.trainer import train

    monkeypatch.chdir(source_run.parent)
    result = train(tiny(init_from=source_run.name), tmp_path / "run", progress=False, data=memory_data())
    run = RunFolder(result.run_dir)
    assert TrainConfig.from_json(run.config_json).init_from == str(source_run.resolve())  # relative paths resolved
    assert json.loads(run.metrics_json.read_text())["training"]["init_from"] == str(source_run.resolve())
    assert f"weights initialised from {RunFolder(source_run).model_keras.resolve()}" in run.train_log.read_text()
    assert json.loads(RunFolder(source_run).metrics_json.read_text())["training"]["init_from"] is None


@pytest.mark.parametrize("form", ["model.keras", "keras export"])
def test_a_keras_file_or_export_folder_is_a_source_too(source_run, tmp_path, form):
    from lipnet_ko.model.run_folder import SIDE_FILES
    from lipnet_ko.training.trainer import find_init_model

    path = RunFolder(source_run).model_keras
    if form == "keras export":
        path = tmp_path / "export"
        path.mkdir()
        for name in ("model.keras", *SIDE_FILES):
            shutil.copy(source_run / name, path / name)
        (path / "export.json").write_text(json.dumps({"format": "keras"}))
    init = find_init_model(tiny(init_from=str(path)), JamoTokenizer())
    assert init.model_file == (path if form == "model.keras" else path / "model.keras")


# ---------------------------------------------------------------- what cannot be a source


def test_another_tokenizer_is_refused_by_name_and_size(tmp_path):
    from runs import write_run

    from lipnet_ko.training.trainer import find_init_model

    tokenizer = CharTokenizer()
    write_run(tmp_path / "grid", model_config("tiny", height=HEIGHT, width=WIDTH, vocabulary_size=tokenizer.vocab_size),
              tokenizer)
    with pytest.raises(ValueError, match=r"its tokenizer is char \(29 ids\), this run's is jamo \(69 ids\): "
                                         r"fine-tuning needs the same tokenizer \(--tokenizer char\)"):
        find_init_model(tiny(init_from=str(tmp_path / "grid")), JamoTokenizer())


def test_another_network_is_refused_naming_each_field_that_differs(source_run):
    from lipnet_ko.training.trainer import find_init_model

    with pytest.raises(ValueError, match=r"its network differs from this run's: gru_units 16 vs 32 \(its vs this run's\)"):
        find_init_model(tiny(init_from=str(source_run), model={"gru_units": 32}), JamoTokenizer())
    with pytest.raises(ValueError, match=r"preset tiny vs small, input_pool 1 vs 2, conv_filters \(4, 8, 8\) vs \(16, 32, 48\), "
                                         r"gru_units 16 vs 128, .*pool_last True vs False \(its"):
        find_init_model(tiny(init_from=str(source_run), preset="small"), JamoTokenizer())
    # dropout has no weights: a fine-tuning run may regularise more (or less) than its source did
    find_init_model(tiny(init_from=str(source_run), model={"dropout": 0.3, "gru_dropout": 0.1}), JamoTokenizer())


def test_weights_of_another_shape_are_refused_even_when_the_configs_agree(source_run):
    from lipnet_ko.model.network import build_model
    from lipnet_ko.training.trainer import find_init_model, load_init_weights

    init = find_init_model(tiny(init_from=str(source_run)), JamoTokenizer())
    wider = build_model(model_config("tiny", height=HEIGHT, width=WIDTH, gru_units=32), frames=8)
    with pytest.raises(ValueError, match=r"its weights do not fit this run's network: bigru_1/.* \(24, 48\) vs \(24, 96\)"):
        load_init_weights(wider, init)


def _refuses_before_any_data(monkeypatch):
    def no_data(*args, **kwargs):
        raise AssertionError("the data was prepared before --init was checked")

    monkeypatch.setattr("lipnet_ko.training.trainer.prepare_data", no_data)


def _no_keras_model(folder: Path, kind: str) -> Path:
    """``folder/kind``: nothing there, a run folder still training, or a tflite export."""
    source = folder / kind
    if kind == "unfinished":
        source.mkdir()
        RunFolder(source).state_json.write_text("{}")
    elif kind == "tflite":
        source.mkdir()
        (source / "export.json").write_text(json.dumps({"format": "tflite"}))
        (source / "model.tflite").write_bytes(b"TFL3")
    return source


@pytest.mark.parametrize(
    "kind, error, message",
    [("missing", FileNotFoundError, "no such run folder or model file"),
     ("unfinished", FileNotFoundError, r"no model.keras in that folder \(a run still training"),
     ("tflite", ValueError, "a tflite model has no Keras weights to fine-tune")],
)
def test_a_source_that_is_no_keras_model_is_an_error_before_the_data_or_the_run_folder(tmp_path, monkeypatch, kind,
                                                                                        error, message):
    from lipnet_ko.training.trainer import train

    _refuses_before_any_data(monkeypatch)
    source = _no_keras_model(tmp_path, kind)
    with pytest.raises(error, match=f"--init {source}: {message}"):
        train(tiny(init_from=str(source)), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_a_mismatch_is_an_error_before_the_data(source_run, tmp_path, monkeypatch):
    from lipnet_ko.training.trainer import train

    _refuses_before_any_data(monkeypatch)
    with pytest.raises(ValueError, match="gru_units 16 vs 32"):
        train(tiny(init_from=str(source_run), model={"gru_units": 32}), tmp_path / "run", progress=False)


# ---------------------------------------------------------------- freezing the frontend


def test_the_frontend_stays_bit_identical_while_frozen_and_trains_after(source_run, tmp_path, monkeypatch):
    import keras

    from lipnet_ko.training.trainer import _Trainer, frontend_layers, train

    seen = []  # per epoch: (frontend weights, other weights) after its steps, optimizer steps after its end
    end_epoch = _Trainer.end_epoch

    def recording(self, epoch_start):
        weights = weights_of(self.model, True), weights_of(self.model, False)
        end_epoch(self, epoch_start)
        seen.append((*weights, int(self.optimizer.iterations.numpy())))

    monkeypatch.setattr(_Trainer, "end_epoch", recording)
    result = train(tiny(init_from=str(source_run), epochs=3, freeze_frontend_epochs=2), tmp_path / "run", progress=False,
                   data=memory_data())
    frontend, backend = source_weights(source_run, True), source_weights(source_run, False)
    assert len(seen) == 3 and result.state.step == 9  # three steps an epoch
    for epoch, (front, back, _) in enumerate(seen[:2]):
        assert front.keys() == frontend.keys()
        for path, value in frontend.items():  # kernels, biases, gamma, beta, and the moving statistics too
            np.testing.assert_array_equal(front[path], value, err_msg=f"epoch {epoch + 1}: {path}")
        assert all(not np.array_equal(back[p], v) for p, v in backend.items()), f"epoch {epoch + 1}"
    front, _, _ = seen[2]
    moved = [p for p, v in frontend.items() if not np.array_equal(front[p], v)]
    assert sorted(moved) == sorted(frontend), "every frontend weight trains once unfrozen"
    # the optimizer restarted when the frontend joined in: its step count is epoch 3's steps only
    assert [steps for _, _, steps in seen] == [3, 0, 3]
    kept = keras.saving.load_model(RunFolder(result.run_dir).model_keras)
    assert all(layer.trainable for layer in frontend_layers(kept))


def test_a_run_frozen_to_the_end_keeps_the_source_frontend(source_run, tmp_path):
    from lipnet_ko.training.trainer import train

    result = train(tiny(init_from=str(source_run), freeze_frontend_epochs=5), tmp_path / "run", progress=False,
                   data=memory_data())
    import keras

    kept = keras.saving.load_model(RunFolder(result.run_dir).model_keras)
    frontend = source_weights(source_run, True)
    assert all(np.array_equal(weights_of(kept, True)[p], v) for p, v in frontend.items())


def _last_checkpoint(run_dir: Path) -> dict[str, np.ndarray]:
    run = RunFolder(run_dir)
    with np.load(run.checkpoints / json.loads(run.state_json.read_text())["checkpoint"]) as archive:
        return {k: archive[k] for k in archive.files}


@pytest.mark.parametrize("kill_at", [4, 6, 7], ids=["mid-frozen-epoch", "at-unfreezing", "mid-unfrozen-epoch"])
def test_a_stopped_run_resumes_to_the_weights_of_one_that_never_stopped(source_run, tmp_path, monkeypatch, kill_at):
    """Epochs of three steps, the first two frozen; the run stops before step ``kill_at + 1``. The resumed run
    traces its phase's step anew, restarts the optimizer only if it had not yet, and does not read --init again."""
    from lipnet_ko.training.trainer import _Trainer, train

    source = shutil.copytree(source_run, tmp_path / "source")
    config = tiny(init_from=str(source), epochs=3, freeze_frontend_epochs=2)
    train(config, tmp_path / "straight", progress=False, data=memory_data())

    step = _Trainer.step

    def stopping(self, batch):
        if self.state.step == kill_at:
            raise KeyboardInterrupt
        return step(self, batch)

    with monkeypatch.context() as patch:
        patch.setattr(_Trainer, "step", stopping)
        with pytest.raises(KeyboardInterrupt):
            train(config, tmp_path / "stopped", progress=False, data=memory_data())
    assert json.loads(RunFolder(tmp_path / "stopped").state_json.read_text())["step"] == kill_at
    shutil.rmtree(source)  # a resumed run continues from its checkpoint, not from --init
    result = train(config, tmp_path / "stopped", resume=True, progress=False, data=memory_data())
    assert result.state.step == 9
    straight, resumed = _last_checkpoint(tmp_path / "straight"), _last_checkpoint(tmp_path / "stopped")
    assert straight.keys() == resumed.keys()
    for key, value in straight.items():
        np.testing.assert_allclose(resumed[key], value, atol=1e-6, err_msg=key)


# ---------------------------------------------------------------- the config


def test_config_round_trips_with_the_new_fields_and_old_configs_get_the_defaults(tmp_path):
    path = tmp_path / "config.json"
    config = TrainConfig(init_from="runs/base", freeze_frontend_epochs=3)
    path.write_text(json.dumps(config.to_dict()))
    assert TrainConfig.from_json(path) == config
    old = TrainConfig().to_dict()
    del old["init_from"], old["freeze_frontend_epochs"]  # config.json of a run from before fine-tuning
    path.write_text(json.dumps(old))
    loaded = TrainConfig.from_json(path)
    assert loaded.init_from is None and loaded.freeze_frontend_epochs == 0
    assert TrainConfig(init_from=Path("runs/base")).init_from == "runs/base"  # JSON-ready


@pytest.mark.parametrize(
    "overrides, message",
    [({"freeze_frontend_epochs": 2}, "needs init_from"), ({"init_from": "x", "freeze_frontend_epochs": -1}, ">= 0"),
     ({"init_from": ""}, "init_from must be the path")],
)
def test_bad_fine_tuning_settings_fail_early(overrides, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**overrides)
