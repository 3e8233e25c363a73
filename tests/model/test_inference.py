import re
import shutil
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from lipnet_ko.files import write_json_atomic  # noqa: E402
from lipnet_ko.model.inference import load_recognizer, write_side_files  # noqa: E402
from lipnet_ko.model.config import model_config  # noqa: E402
from lipnet_ko.model.run_folder import SIDE_FILES, RunFolder  # noqa: E402
from lipnet_ko.video.extract import PreprocessConfig  # noqa: E402
from lipnet_ko.text.tokenizer import get_tokenizer  # noqa: E402

import runs  # noqa: E402

TOKENIZER = get_tokenizer("jamo")
CONFIG = model_config("tiny", height=24, width=48, vocabulary_size=TOKENIZER.vocab_size)


def write_run(folder, config=CONFIG, tokenizer=TOKENIZER):
    """A training run folder (tests/runs.py) plus a config.json, as lipnet_ko.training.trainer leaves it."""
    model = runs.write_run(folder, config, tokenizer)
    write_json_atomic(RunFolder(folder).config_json, {"preset": "tiny"})
    return model


def random_clips(lengths, config=CONFIG, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (n, config.height, config.width, config.channels), dtype=np.uint8) for n in lengths]


def model_logits(model, clip):
    """The Keras model's own output for one clip, alone in its batch."""
    crops = clip[None].astype(np.float32) * np.float32(1 / 255)
    return model((crops, np.array([len(clip)], np.int32)), training=False).numpy()[0]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """``<tmp>/runs/<run>`` with the model, and ``runs/latest`` -> that run, as train.py leaves them."""
    root = tmp_path_factory.mktemp("work")
    run = RunFolder(root / "runs" / "20240101-000000")
    model = write_run(run.path)
    run.point_latest(root / "runs")
    assert (root / "runs" / "latest").is_symlink()
    return root, model


@pytest.fixture(scope="module")
def run_dir(workdir):
    return workdir[0] / "runs" / "20240101-000000"


@pytest.fixture(scope="module")
def model(workdir):
    return workdir[1]


@pytest.fixture(scope="module")
def recognizer(run_dir):
    return load_recognizer(run_dir)


def test_a_run_folder_loads_with_its_configuration(recognizer, run_dir):
    assert recognizer.format == "keras"
    assert recognizer.source == RunFolder(run_dir).model_keras
    assert recognizer.model_config == CONFIG
    assert recognizer.tokenizer == TOKENIZER
    assert recognizer.preprocess == PreprocessConfig()
    assert recognizer.model.config == CONFIG


def test_runs_latest_is_the_default(workdir, monkeypatch):
    root, _ = workdir
    via_link = load_recognizer(RunFolder.latest(root / "runs").path)
    assert via_link.model_config == CONFIG
    monkeypatch.chdir(root)
    default = load_recognizer()
    assert default.source.resolve() == RunFolder(root / "runs" / "20240101-000000").model_keras.resolve()


def test_a_keras_file_loads_with_the_json_files_beside_it(run_dir, model):
    recognizer = load_recognizer(RunFolder(run_dir).model_keras)
    clip = random_clips([6])[0]
    np.testing.assert_allclose(recognizer.logits([clip])[0], model_logits(model, clip), atol=1e-5)


def test_no_model_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"python train\.py.*--model"):
        load_recognizer()
    with pytest.raises(FileNotFoundError, match=r"no model in .*python train\.py"):
        load_recognizer(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_recognizer(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="not a model file"):
        load_recognizer(tmp_path / "notes.txt")


def test_side_files_are_written_under_the_names_a_run_folder_reads(tmp_path):
    write_side_files(tmp_path, CONFIG, TOKENIZER, PreprocessConfig())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(SIDE_FILES)
    assert all(path.is_file() for path in RunFolder(tmp_path).side_files)


@pytest.mark.parametrize("missing", ["tokenizer.json", "model_config.json", "preprocess.json"])
def test_a_missing_side_file_is_named(run_dir, tmp_path, missing):
    copy = shutil.copytree(run_dir, tmp_path / "run")
    (copy / missing).unlink()
    with pytest.raises(FileNotFoundError, match=missing):
        load_recognizer(copy)


def test_a_tokenizer_of_another_size_is_refused(run_dir, tmp_path):
    copy = shutil.copytree(run_dir, tmp_path / "run")
    get_tokenizer("char").save(copy / "tokenizer.json")
    with pytest.raises(ValueError, match="model and tokenizer do not match"):
        load_recognizer(copy)


def test_a_config_that_does_not_describe_the_model_is_refused(run_dir, tmp_path):
    copy = shutil.copytree(run_dir, tmp_path / "run")
    other = model_config("tiny", height=32, width=48, vocabulary_size=TOKENIZER.vocab_size)
    write_json_atomic(copy / "model_config.json", other.to_dict())
    with pytest.raises(ValueError, match="model and config do not match"):
        load_recognizer(copy)


def test_logits_of_one_clip_equal_the_models_output(recognizer, model):
    clip = random_clips([10])[0]
    (logits,) = recognizer.logits([clip])
    assert logits.shape == (10, TOKENIZER.vocab_size) and logits.dtype == np.float32
    np.testing.assert_allclose(logits, model_logits(model, clip), atol=1e-5)


def test_batching_and_padding_do_not_change_a_clips_logits(recognizer):
    short, long, medium = random_clips([5, 17, 9], seed=1)
    alone = recognizer.logits([short])[0]
    batched = recognizer.logits([short, long, medium])
    assert [len(x) for x in batched] == [5, 17, 9]  # input order, padding stripped
    np.testing.assert_allclose(batched[0], alone, atol=1e-4)
    one_by_one = recognizer.logits([short, long, medium], batch_size=1)
    for a, b in zip(batched, one_by_one):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_predict_takes_float_or_uint8_batches(recognizer):
    clips = random_clips([8, 4], seed=2)
    crops = np.zeros((2, 8, CONFIG.height, CONFIG.width, CONFIG.channels), np.uint8)
    crops[0], crops[1, :4] = clips
    lengths = np.array([8, 4], np.int32)
    from_uint8 = recognizer.predict(crops, lengths)
    from_float = recognizer.predict(crops.astype(np.float32) / 255, lengths)
    assert from_uint8.shape == (2, 8, TOKENIZER.vocab_size)
    np.testing.assert_allclose(from_uint8, from_float, atol=1e-5)
    np.testing.assert_allclose(from_uint8[1, :4], recognizer.logits([clips[1]])[0], atol=1e-4)
    with pytest.raises(ValueError, match="crop_lengths must lie in 1..8"):
        recognizer.predict(crops, np.array([9, 4], np.int32))


def test_clips_of_the_wrong_size_or_type_are_refused(recognizer):
    with pytest.raises(ValueError, match=r"clip 1 has shape \(4, 50, 100, 3\).*24x48x3"):
        recognizer.logits([random_clips([4])[0], np.zeros((4, 50, 100, 3), np.uint8)])
    with pytest.raises(ValueError, match="clip 0 is float32; pass uint8"):
        recognizer.logits([np.zeros((4, 24, 48, 3), np.float32)])
    with pytest.raises(ValueError, match="no frames"):
        recognizer.logits([np.zeros((0, 24, 48, 3), np.uint8)])
    with pytest.raises(ValueError, match=r"crops must be \[B, T, 24, 48, 3\]"):
        recognizer.predict(np.zeros((1, 4, 24, 48, 1), np.float32), np.array([4]))


def probe_clip(frames: int) -> np.ndarray:
    """The deterministic uint8 clip ``tests/fixtures/run-0.1.0/probe_logits.npz`` was computed on."""
    t, y, x, c = np.meshgrid(np.arange(frames), np.arange(50), np.arange(100), np.arange(3), indexing="ij")
    return ((t * 17 + y * 3 + x * 2 + c * 50) % 256).astype(np.uint8)


def test_a_run_saved_before_the_package_was_split_into_stages_still_loads_and_predicts_the_same(tmp_path):
    """``tests/fixtures/run-0.1.0`` was written by the flat-module package (``lipnet_ko.model``,
    ``lipnet_ko.inference``, ``lipnet_ko.training``): a tiny model.keras, its side files, a config.json and the
    logits it gave then on two probe clips."""
    from lipnet_ko.training.config import TrainConfig

    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "run-0.1.0"
    run = tmp_path / "run"
    shutil.copytree(fixture, run)
    recognizer = load_recognizer(run)
    assert recognizer.model is not None and type(recognizer.model).__name__ == "LipNet"
    expected = np.load(run / "probe_logits.npz")
    logits = recognizer.logits([probe_clip(9), probe_clip(6)])
    np.testing.assert_allclose(logits[0], expected["logits0"], atol=1e-5)
    np.testing.assert_allclose(logits[1], expected["logits1"], atol=1e-5)
    # Its training config names a v3 synthetic corpus, which corpus v4 cannot rebuild: a clear error, not a crash.
    with pytest.raises(ValueError, match="another synthetic corpus version.*--data SPEC"):
        TrainConfig.from_json(run / "config.json")


def test_a_tflite_export_made_before_the_split_still_loads_and_predicts_the_same():
    """``tests/fixtures/export-0.1.0-tflite``: ``lipnet-ko export`` of the run above by version 0.1.0."""
    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    recognizer = load_recognizer(fixtures / "export-0.1.0-tflite")
    assert recognizer.format == "tflite"
    expected = np.load(fixtures / "run-0.1.0" / "probe_logits.npz")
    logits = recognizer.logits([probe_clip(9), probe_clip(6)])
    np.testing.assert_allclose(logits[0], expected["logits0"], atol=1e-4)
    np.testing.assert_allclose(logits[1], expected["logits1"], atol=1e-4)


def _damaged_keras(path: Path, how: str) -> None:
    """Overwrite the model.keras at ``path`` with one that is there but cannot be read."""
    import zipfile

    data = path.read_bytes()
    if how == "garbage":
        path.write_bytes(b"this is not a model, it is a note\n" * 10)
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])  # a copy that stopped half way: the zip's directory is gone
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "bit-rot":
        damaged = bytearray(data)
        middle = len(data) // 2  # inside model.weights.h5, which Keras stores uncompressed
        damaged[middle : middle + 64] = bytes(b ^ 0xFF for b in damaged[middle : middle + 64])
        path.write_bytes(bytes(damaged))
    elif how == "other-zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("notes.txt", "not a model")


@pytest.mark.parametrize(
    "how, why",
    [
        ("garbage", r"not a Keras archive: 340 bytes that are not a zip archive"),
        ("truncated", r"not a Keras archive: a zip archive cut short \(\d+ bytes, its end is missing\)"),
        ("empty", r"not a Keras archive: the file is empty"),
        ("bit-rot", r"damaged Keras archive: model\.weights\.h5 fails its checksum"),
        ("other-zip", r"not a Keras archive: the zip has no config\.json, model\.weights\.h5"),
    ],
)
def test_a_damaged_model_keras_says_it_cannot_be_read_and_why(run_dir, tmp_path, how, why):
    copy = shutil.copytree(run_dir, tmp_path / "run")
    model_file = RunFolder(copy).model_keras
    _damaged_keras(model_file, how)
    for path in (copy, model_file):  # the run folder, or the .keras file itself
        with pytest.raises(ValueError) as error:
            load_recognizer(path)
        message = str(error.value)
        assert message.startswith(f"cannot read the model {model_file}: ")
        assert re.search(why, message), message
        assert "(was it copied whole?)" in message
        assert "File not found" not in message  # what Keras itself says about a file that is there


def test_a_keras_archive_with_damaged_weights_names_the_problem(run_dir, tmp_path):
    import zipfile

    copy = shutil.copytree(run_dir, tmp_path / "run")
    model_file = RunFolder(copy).model_keras
    with zipfile.ZipFile(RunFolder(run_dir).model_keras) as original, zipfile.ZipFile(model_file, "w") as damaged:
        for name in original.namelist():  # a well-formed zip whose weights file is cut in half
            data = original.read(name)
            damaged.writestr(name, data[: len(data) // 2] if name.endswith(".h5") else data)
    with pytest.raises(ValueError, match=rf"cannot read the model {re.escape(str(model_file))}: .*truncated") as error:
        load_recognizer(copy)
    assert "File not found" not in str(error.value)


@pytest.mark.parametrize("name", ["model_config.json", "tokenizer.json", "preprocess.json"])
@pytest.mark.parametrize("content", ['{"cut off', "[1, 2]"])
def test_a_damaged_side_file_is_named(run_dir, tmp_path, name, content):
    copy = shutil.copytree(run_dir, tmp_path / "run")
    (copy / name).write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=rf"^cannot read {re.escape(str(copy / name))}: .*was it copied whole\?"):
        load_recognizer(copy)


def _export_folder(tmp_path, run_dir, fmt: str) -> Path:
    """An export folder's manifest and side files, without its model files (the test writes those)."""
    folder = tmp_path / f"export-{fmt}"
    folder.mkdir()
    for name in SIDE_FILES:
        shutil.copyfile(run_dir / name, folder / name)
    write_json_atomic(folder / "export.json", {"format": fmt})
    return folder


def test_a_damaged_savedmodel_says_it_cannot_be_read(run_dir, tmp_path):
    folder = _export_folder(tmp_path, run_dir, "savedmodel")
    (folder / "variables").mkdir()
    (folder / "variables" / "variables.index").write_bytes(b"\x00" * 10)
    (folder / "saved_model.pb").write_bytes(b"\x00garbage, not a protobuf" * 20)
    with pytest.raises(ValueError, match=rf"^cannot read the SavedModel in {re.escape(str(folder))}: .*was it copied whole\?"):
        load_recognizer(folder)
    (folder / "variables" / "variables.index").unlink()
    with pytest.raises(FileNotFoundError, match=r"savedmodel export but variables/variables\.index is missing"):
        load_recognizer(folder)


@pytest.mark.parametrize("how", ["garbage", "truncated"])
def test_a_damaged_tflite_model_says_it_cannot_be_read(tmp_path, how):
    """A truncated flatbuffer used to crash the interpreter (segmentation fault) when loaded from a path."""
    export = shutil.copytree(Path(__file__).resolve().parents[1] / "fixtures" / "export-0.1.0-tflite", tmp_path / "export")
    model_file = export / "model.tflite"
    data = model_file.read_bytes()
    model_file.write_bytes(b"garbage!" * 8 if how == "garbage" else data[: len(data) // 3])
    with pytest.raises(ValueError) as error:
        load_recognizer(export)
    message = str(error.value)
    assert message.startswith(f"cannot read the TFLite model {model_file}: not a valid TFLite file")
    assert "(was it copied whole?)" in message


def test_a_damaged_export_manifest_is_named(run_dir, tmp_path):
    folder = _export_folder(tmp_path, run_dir, "keras")
    (folder / "export.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"^cannot read {re.escape(str(folder / 'export.json'))}: JSONDecodeError"):
        load_recognizer(folder)
