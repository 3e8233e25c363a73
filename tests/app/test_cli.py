import subprocess
import sys

import pytest

from lipnet_ko import __version__
from lipnet_ko.app.cli import SUBCOMMANDS, main


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"lipnet-ko {__version__}"


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "commands:" in capsys.readouterr().out


def test_unknown_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
    assert "unknown command" in capsys.readouterr().err


def test_every_command_module_has_the_interface():
    import importlib

    for module_name, _ in SUBCOMMANDS.values():
        module = importlib.import_module(module_name)
        assert callable(module.configure_parser) and callable(module.run), module_name


def test_console_script_normalize(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("(3%)/(삼 퍼센트) 올랐다.\n가+나\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "lipnet_ko", "normalize", str(src)], capture_output=True, text=True)
    assert proc.returncode == 0
    assert proc.stdout.splitlines() == ["삼 퍼센트 올랐다", ""]
    assert "in.txt:2" in proc.stderr


def test_score_command(tmp_path, capsys):
    ref, hyp = tmp_path / "ref.txt", tmp_path / "hyp.txt"
    ref.write_text("가나다 라마\n바사\n", encoding="utf-8")
    hyp.write_text("가나다 라마\n바자\n", encoding="utf-8")
    assert main(["score", str(ref), str(hyp), "--json"]) == 0
    import json

    scores = json.loads(capsys.readouterr().out)
    assert scores["cer"] == pytest.approx(1 / 7)
    assert scores["wer"] == pytest.approx(1 / 3)
    hyp.write_text("가\n", encoding="utf-8")
    assert main(["score", str(ref), str(hyp)]) == 2
