"""Notebooks: committed clean (no outputs, parameters first, no functions), and all three run in order in quick mode."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = ("01_data_and_preprocessing.ipynb", "02_training.ipynb", "03_evaluation_and_subtitles.ipynb")  # run order
TEST_SPLITS = ("unseen_sentences", "unseen_speakers")  # the synthetic corpus v4's test splits
CELL_TIMEOUT_S = 240  # generous for a busy 2-core machine; the slowest cell (training) takes well under a minute alone


def _read(name: str):
    return nbformat.read(REPO / "notebooks" / name, as_version=4)


def _code_cells(nb) -> list:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def _text_outputs(nb) -> str:
    """Everything the executed notebook printed or displayed as text, in cell order."""
    parts = []
    for cell in _code_cells(nb):
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(output.text)
            elif "data" in output:
                parts.append(output.data.get("text/plain", "") + output.data.get("text/markdown", ""))
    return "\n".join(parts)


def _images(nb) -> int:
    return sum(any(k.startswith("image/") for k in output.get("data", {}))
               for cell in _code_cells(nb) for output in cell.get("outputs", []))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_is_clean(name):
    nb = _read(name)
    nbformat.validate(nb)
    cells = _code_cells(nb)
    assert all(not cell.outputs and cell.execution_count is None for cell in cells), "clear the outputs before committing"
    first = cells[0].source
    assert "LIPNET_KO_NOTEBOOK_QUICK" in first and "LIPNET_KO_NOTEBOOK_DIR" in first, "the first code cell reads the parameters"
    assert any("import lipnet_ko" in cell.source for cell in cells)
    for cell in cells:  # pipeline code belongs in lipnet_ko/, where it is tested
        assert not re.search(r"^\s*(def|class) ", cell.source, re.MULTILINE), cell.source


@pytest.mark.dlib
def test_notebooks_run_in_order_in_quick_mode(tmp_path, monkeypatch):
    work = tmp_path / "work"
    monkeypatch.setenv("LIPNET_KO_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("LIPNET_KO_NOTEBOOK_DIR", str(work))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    executed = {}
    for name in NOTEBOOKS:
        nb = _read(name)
        client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                                         resources={"metadata": {"path": str(REPO)}})
        try:
            client.execute()  # raises CellExecutionError with the failing cell and its traceback
        finally:
            nbformat.write(nb, tmp_path / name)  # executed copy, for a look after a failure
        executed[name] = nb

    nb01, nb02, nb03 = (executed[name] for name in NOTEBOOKS)
    split = json.loads((work / "corpus" / "split.json").read_text(encoding="utf-8"))
    assert set(split["splits"]) == set(TEST_SPLITS) | {"train", "val"} and (work / "corpus" / "preview.png").exists()
    assert next((work / "corpus").glob("C*/*.mp4")).exists()  # notebook 01's corpus has videos (01 and 03 read them)
    assert _images(nb01) >= 5  # contact sheet, GIF, frames with boxes, crops, landmarks
    assert "visemes:" in _text_outputs(nb01) and all(name in _text_outputs(nb01) for name in TEST_SPLITS)

    run = work / "run"
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert set(TEST_SPLITS) <= set(metrics) and metrics["training"]["epochs"] == 2
    assert set(metrics["oracle_floor"]) == set(TEST_SPLITS)
    assert all(set(floors) == {"beam", "beam_lm"} for floors in metrics["oracle_floor"].values())
    assert len((run / "log.csv").read_text(encoding="utf-8").strip().splitlines()) == 1 + 2  # header + one row per epoch
    assert "syl CER" in _text_outputs(nb02) and "floor:beam_lm" in _text_outputs(nb02) and _images(nb02) >= 1

    report = json.loads((work / "report" / "report.json").read_text(encoding="utf-8"))
    assert set(report["decoders"]) == {"greedy", "beam", "beam_lm"} and report["num_utterances"] >= 2
    assert (work / "report" / "viseme_confusions_beam_lm.png").stat().st_size > 1000
    subtitles = work / "subtitles"
    unseen_speakers = set(split["meta"]["held_out"])
    assert unseen_speakers and any(f"_{speaker}_" in next(subtitles.glob("*.json")).stem for speaker in unseen_speakers)
    transcript = json.loads(next(subtitles.glob("*.json")).read_text(encoding="utf-8"))
    assert transcript["segments"], "segmentation found no utterance in a video of several sentences"
    assert next(subtitles.glob("*.srt")).exists() and next(subtitles.glob("*.gif")).stat().st_size > 1000
    assert "## Corpus" in _text_outputs(nb03) and _images(nb03) >= 3  # two heatmaps and the captioned GIF
