import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from lipnet_ko.model import export as export_module  # noqa: E402
from lipnet_ko.app.cli import main  # noqa: E402
from lipnet_ko.model.export import FLOAT32_ATOL, export  # noqa: E402
from lipnet_ko.model.inference import load_recognizer  # noqa: E402
from lipnet_ko.model.config import model_config  # noqa: E402
from lipnet_ko.model.run_folder import RunFolder  # noqa: E402
from lipnet_ko.text.tokenizer import get_tokenizer  # noqa: E402
from runs import write_run  # noqa: E402

TOKENIZER = get_tokenizer("jamo")
# input_pool=2 on an odd crop size: the "same"-padded AveragePooling3D is exported as per-frame 2-D pooling too.
CONFIG = model_config("tiny", height=37, width=49, input_pool=2, vocabulary_size=TOKENIZER.vocab_size)
LENGTHS = (15, 6, 9)  # batched together by Recognizer.logits, so padding is exercised
SIDE_FILES = {"model_config.json", "tokenizer.json", "preprocess.json", "export.json"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(run folder, its Keras model, the model's own logits for LENGTHS random clips, each run alone)."""
    run_dir = tmp_path_factory.mktemp("runs") / "run"
    model = write_run(run_dir, CONFIG, TOKENIZER)
    rng = np.random.default_rng(3)
    clips = [rng.integers(0, 256, (n, CONFIG.height, CONFIG.width, CONFIG.channels), dtype=np.uint8) for n in LENGTHS]
    reference = [
        model((c[None].astype(np.float32) * np.float32(1 / 255), np.array([len(c)], np.int32)), training=False).numpy()[0]
        for c in clips
    ]
    return run_dir, clips, reference


@pytest.fixture(scope="module")
def exports(trained):
    """fmt -> the manifest export() returned, each exported once into the default RUN/export/<fmt>."""
    run_dir = trained[0]
    return {fmt: export(run_dir, fmt) for fmt in ("keras", "savedmodel", "tflite")}


@pytest.mark.parametrize("fmt", ["keras", "savedmodel", "tflite"])
def test_an_export_is_a_self_contained_folder(exports, trained, fmt):
    manifest = exports[fmt]
    path = RunFolder(trained[0]).export_dir(fmt)
    assert manifest["path"] == str(path)
    on_disk = json.loads((path / "export.json").read_text(encoding="utf-8"))
    assert on_disk["format"] == fmt and on_disk["source_run"] == str(trained[0].resolve())
    sizes = {p.relative_to(path).as_posix(): p.stat().st_size for p in path.rglob("*") if p.is_file() and p.name != "export.json"}
    assert on_disk["files"] == sizes
    assert SIDE_FILES - {"export.json"} <= set(sizes)
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []  # no temporary folder left


@pytest.mark.parametrize("fmt", ["keras", "savedmodel", "tflite"])
def test_a_reloaded_export_gives_the_trained_models_logits(exports, trained, fmt):
    run_dir, clips, reference = trained
    recognizer = load_recognizer(RunFolder(run_dir).export_dir(fmt))
    assert recognizer.format == fmt
    assert recognizer.tokenizer == TOKENIZER and recognizer.model_config == CONFIG
    logits = recognizer.logits(clips)
    for got, want in zip(logits, reference):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=FLOAT32_ATOL)
    for name, info in exports[fmt]["models"].items():
        if info["dtype"] == "float32":
            assert info["check"]["max_abs_diff"] <= FLOAT32_ATOL


def test_the_savedmodel_signature_takes_uint8_crops_of_any_batch_and_length(exports, trained):
    import tensorflow as tf

    run_dir, clips, reference = trained
    serve = tf.saved_model.load(str(RunFolder(run_dir).export_dir("savedmodel"))).signatures["serving_default"]
    crops = np.zeros((2, 15, CONFIG.height, CONFIG.width, CONFIG.channels), np.uint8)
    crops[0], crops[1, :6] = clips[0], clips[1]
    out = serve(crops=tf.constant(crops), crop_lengths=tf.constant([15, 6], tf.int32))
    assert out["logits"].dtype == tf.float32 and tuple(out["logits"].shape) == (2, 15, TOKENIZER.vocab_size)
    assert out["logit_lengths"].numpy().tolist() == [15, 6]
    np.testing.assert_allclose(out["logits"].numpy()[1, :6], reference[1], atol=FLOAT32_ATOL)


def test_float16_tflite_agrees_with_the_trained_model(exports, trained, record_property):
    run_dir, clips, reference = trained
    files = exports["tflite"]["files"]
    assert files["model_fp16.tflite"] < files["model.tflite"]
    recognizer = load_recognizer(RunFolder(run_dir).export_dir("tflite") / "model_fp16.tflite")
    logits = recognizer.logits(clips)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(logits, reference))
    agreement = np.concatenate([a.argmax(-1) == b.argmax(-1) for a, b in zip(logits, reference)]).mean()
    record_property("fp16_max_abs_diff", diff)
    record_property("fp16_argmax_agreement", agreement)
    print(f"float16 TFLite: max |logit diff| {diff:.2e}, argmax agreement {agreement:.3f}")
    assert agreement >= 0.95
    assert diff < 0.05
    check = exports["tflite"]["models"]["model_fp16.tflite"]["check"]
    assert check["argmax_agreement"] >= 0.95
    assert any("batch size 1" in line for line in exports["tflite"]["limitations"])


def test_a_failed_export_leaves_nothing(trained, tmp_path, monkeypatch):
    def broken(*args):
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(export_module, "_write_model", broken)
    with pytest.raises(RuntimeError, match="converter crashed"):
        export(trained[0], "savedmodel", out=tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments_are_refused(trained, exports, tmp_path):
    run_dir = trained[0]
    with pytest.raises(ValueError, match="unknown export format 'onnx'"):
        export(run_dir, "onnx")
    with pytest.raises(FileExistsError, match="not an export folder"):
        export(run_dir, "keras", out=run_dir)
    with pytest.raises(ValueError, match="already a savedmodel export"):
        export(RunFolder(run_dir).export_dir("savedmodel"), "tflite", out=tmp_path / "x")
    with pytest.raises(FileNotFoundError):
        export(tmp_path / "no_run", "keras")


def test_cli_exports_again_over_an_export_and_prints_files_and_sizes(exports, trained, capsys):
    run_dir = trained[0]
    out = RunFolder(run_dir).export_dir("keras")
    assert main(["export", str(run_dir), "--format", "keras"]) == 0
    printed = capsys.readouterr().out
    assert f"exported keras to {out}" in printed
    size = (out / "model.keras").stat().st_size
    assert "model.keras" in printed and f"{size / 1e3:.1f} kB" in printed
    assert json.loads((out / "export.json").read_text(encoding="utf-8"))["files"] == exports["keras"]["files"]
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []  # the old export is gone


def test_cli_exit_codes(tmp_path, capsys):
    assert main(["export", str(tmp_path / "no_run"), "--format", "keras"]) == 2
    assert "error:" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["export", str(tmp_path), "--format", "onnx"])
    assert exc.value.code == 2
    assert "invalid choice: 'onnx'" in capsys.readouterr().err


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err  # no traceback, one line
    return lines[0]


def test_an_out_folder_under_a_file_is_one_error_line_and_nothing_is_written(trained, tmp_path, capsys):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file where a folder should be")
    out = blocker / "exports" / "keras"
    assert main(["export", str(trained[0]), "--format", "keras", "--out", str(out)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line == f"error: cannot write the export folder {out}: {blocker} is a file, not a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"] and blocker.read_text().startswith("a file")


def test_a_full_disk_during_export_is_one_error_line_and_leaves_no_folder(trained, tmp_path, monkeypatch, capsys):
    import errno

    def disk_full(recognizer, fmt, folder):
        (folder / "model.keras").write_bytes(b"part of a model")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export_module, "_write_model", disk_full)
    out = tmp_path / "new" / "parents" / "keras"
    assert main(["export", str(trained[0]), "--format", "keras", "--out", str(out)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line == f"error: cannot write the export folder {out}: No space left on device"
    assert list(tmp_path.iterdir()) == []  # neither the partial export nor the parent folders it made


def test_a_damaged_model_keras_is_an_error_that_says_so(trained, tmp_path, capsys):
    import shutil

    run = shutil.copytree(trained[0], tmp_path / "run", ignore=shutil.ignore_patterns("export"))
    model_file = RunFolder(run).model_keras
    model_file.write_bytes(model_file.read_bytes()[:1000])  # a copy that stopped early
    assert main(["export", str(run), "--format", "keras"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: cannot read the model {model_file}: not a Keras archive") and "copied whole" in line
    assert not RunFolder(run).export_dir("keras").exists()
