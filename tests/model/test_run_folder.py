"""RunFolder: every path of a training run folder, the default runs folder, and the ``runs/latest`` link."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from lipnet_ko.model import run_folder as run_folder_module
from lipnet_ko.model.run_folder import RUNS_DIR, SIDE_FILES, RunFolder, default_run_dir


def test_every_file_of_a_run_has_its_path():
    run = RunFolder("runs/20240101-000000")
    root = Path("runs/20240101-000000")
    assert run.path == root
    assert run.config_json == root / "config.json"
    assert run.model_config_json == root / "model_config.json"
    assert run.tokenizer_json == root / "tokenizer.json"
    assert run.preprocess_json == root / "preprocess.json"
    assert run.splits_json == root / "splits.json"
    assert run.state_json == root / "state.json"
    assert run.checkpoints == root / "checkpoints"
    assert run.checkpoint(20) == root / "checkpoints" / "ckpt-0000020.npz"
    assert run.checkpoint(1234567) == root / "checkpoints" / "ckpt-1234567.npz"
    assert run.best_weights == root / "checkpoints" / "best.weights.h5"
    assert run.log_csv == root / "log.csv"
    assert run.tensorboard == root / "tensorboard"
    assert run.train_log == root / "train.log"
    assert run.model_keras == root / "model.keras"
    assert run.metrics_json == root / "metrics.json"
    assert run.export_dir("tflite") == root / "export" / "tflite"


def test_the_side_files_are_the_three_that_travel_with_a_model():
    assert SIDE_FILES == ("model_config.json", "tokenizer.json", "preprocess.json")
    run = RunFolder(Path("x"))
    assert run.side_files == (run.model_config_json, run.tokenizer_json, run.preprocess_json)


def test_a_run_folder_is_a_value():
    assert RunFolder("runs/a") == RunFolder(Path("runs/a"))
    assert isinstance(RunFolder("runs/a").path, Path)
    assert len({RunFolder("runs/a"), RunFolder(Path("runs/a")), RunFolder("runs/b")}) == 2


def test_resume_checkpoints_lists_only_the_step_checkpoints_in_step_order(tmp_path):
    run = RunFolder(tmp_path)
    assert run.resume_checkpoints() == []  # no checkpoints/ yet
    run.checkpoints.mkdir()
    for path in (run.checkpoint(40), run.checkpoint(7), run.best_weights, run.checkpoints / "notes.txt"):
        path.write_bytes(b"")
    assert run.resume_checkpoints() == [run.checkpoint(7), run.checkpoint(40)]


def test_default_runs_go_under_runs_by_date_and_time():
    assert RUNS_DIR == Path("runs")
    path = default_run_dir()
    assert path.parent == RUNS_DIR
    assert re.fullmatch(r"\d{8}-\d{6}", path.name), path.name


def test_latest_is_the_link_in_the_runs_folder(tmp_path):
    assert RunFolder.latest() == RunFolder("runs/latest")
    assert RunFolder.latest(tmp_path) == RunFolder(tmp_path / "latest")


def test_latest_is_created_as_a_relative_link_and_replaced_by_the_next_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first, second = RunFolder(RUNS_DIR / "a"), RunFolder(RUNS_DIR / "b")
    for run in (first, second):
        run.path.mkdir(parents=True)
    first.point_latest()
    link = tmp_path / "runs" / "latest"
    assert link.is_symlink() and os.readlink(link) == "a"  # relative: the runs folder can move
    assert RunFolder.latest().path.resolve() == (tmp_path / "runs" / "a").resolve()
    second.point_latest()
    assert os.readlink(link) == "b"
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["a", "b", "latest"]  # no temporary link left


def test_latest_is_replaced_in_one_rename_never_removed_first(tmp_path, monkeypatch):
    """While the new link is moved into place the old one still points at the old run: a reader never
    finds ``runs/latest`` missing."""
    runs = tmp_path / "runs"
    old, new = RunFolder(runs / "old"), RunFolder(runs / "new")
    old.path.mkdir(parents=True)
    new.path.mkdir()
    old.point_latest(runs)
    seen = []
    real_replace = os.replace

    def replace(src, dst):
        seen.append((Path(dst).name, os.readlink(runs / "latest")))
        real_replace(src, dst)

    monkeypatch.setattr(run_folder_module.os, "replace", replace)
    new.point_latest(runs)
    assert seen == [("latest", "old")]
    assert os.readlink(runs / "latest") == "new"


def test_a_failed_replacement_leaves_the_old_link_and_no_temporary_one(tmp_path, monkeypatch, caplog):
    runs = tmp_path / "runs"
    old, new = RunFolder(runs / "old"), RunFolder(runs / "new")
    old.path.mkdir(parents=True)
    new.path.mkdir()
    old.point_latest(runs)

    def replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(run_folder_module.os, "replace", replace)
    with caplog.at_level(logging.WARNING, logger="lipnet_ko.model.run_folder"):
        new.point_latest(runs)
    assert "could not point" in caplog.text and "disk full" in caplog.text
    assert os.readlink(runs / "latest") == "old"
    assert sorted(p.name for p in runs.iterdir()) == ["latest", "new", "old"]


def test_a_run_outside_the_runs_folder_leaves_latest_alone(tmp_path):
    runs = tmp_path / "runs"
    inside, outside = RunFolder(runs / "a"), RunFolder(tmp_path / "elsewhere" / "b")
    inside.path.mkdir(parents=True)
    outside.path.mkdir(parents=True)
    inside.point_latest(runs)
    outside.point_latest(runs)
    assert os.readlink(runs / "latest") == "a"
    assert not (outside.path.parent / "latest").exists()

