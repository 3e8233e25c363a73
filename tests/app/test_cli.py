import os
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
    assert proc.returncode == 1  # the exit-status convention: the run went on, but one line (an item) failed
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


# Runs `lipnet-ko ARGS` in a fresh interpreter, then reports which heavy modules the command imported.
_IMPORT_PROBE = """\
import json, sys
from lipnet_ko.app.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit_:
    code = exit_.code
heavy = [name for name in ("tensorflow", "keras", "dlib") if name in sys.modules]
print(json.dumps(heavy), file=sys.stderr)
"""


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_command_help_is_quick_and_imports_no_tensorflow(name):
    import json

    proc = subprocess.run([sys.executable, "-c", _IMPORT_PROBE, name, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.stdout.startswith(f"usage: lipnet-ko {name}"), proc.stderr
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == [], f"`lipnet-ko {name} --help` imports them"


def test_import_lipnet_ko_loads_nothing_heavy():
    code = ("import sys, lipnet_ko; heavy = [m for m in ('numpy', 'cv2', 'tensorflow', 'dlib') if m in sys.modules]; "
            "assert not heavy, heavy; assert callable(lipnet_ko.decode) and lipnet_ko.__version__; "
            "import lipnet_ko.decoding.search; assert lipnet_ko.decode.__module__ == 'lipnet_ko'; "
            "assert callable(lipnet_ko.decoding.search.decode); "
            "from lipnet_ko import TranscribeOptions, transcribe, DecodingOptions; assert transcribe.__module__ == "
            "'lipnet_ko.app.transcribe'; assert 'transcribe' in dir(lipnet_ko)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        import lipnet_ko

        getattr(lipnet_ko, "nope")


def test_top_help_documents_the_exit_status(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "exit status (every command):" in out
    for line in ("0  everything succeeded", "1  the command ran, but at least one item", "2  nothing was done"):
        assert line in out


def test_tensorflow_log_level_is_turned_down_unless_verbose_or_set(tmp_path, monkeypatch):
    text = tmp_path / "in.txt"
    text.write_text("가나\n", encoding="utf-8")
    for flags, preset, expected in (([], None, "2"), (["-v"], None, None), (["--verbose"], None, None), ([], "0", "0")):
        if preset is None:
            monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
        else:
            monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", preset)
        assert main(["normalize", *flags, str(text)]) == 0
        assert os.environ.get("TF_CPP_MIN_LOG_LEVEL") == expected, flags


def test_quiet_native_logs_drops_tensorflow_startup_lines_and_keeps_the_rest(capfd):
    from lipnet_ko.app.cli import quiet_native_logs

    noise = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796217300.830456   31833 port.cc:153] oneDNN custom operations are on. You may see ...",
        "I0000 00:00:1796217300.835321   31833 cudart_stub.cc:31] Could not find cuda drivers on your machine.",
        "E0000 00:00:1796217302.087656   31833 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error (303)",
        "E0000 00:00:1796217306.208127   31833 util.cc:131] oneDNN supports DT_BOOL only on platforms with AVX-512.",
        "2025-09-17 14:44:05.157831: I external/local_xla/xla/tsl/cuda/cudart_stub.cc:32] Could not find cuda drivers",
    ]
    kept = ["E0000 00:00:1796217306.208127   31833 op.cc:9] a real TensorFlow error", "Traceback (most recent call last):"]
    with quiet_native_logs():
        os.write(2, ("\n".join(noise[:3] + kept[:1] + noise[3:] + kept[1:]) + "\n").encode())  # as C++ code writes
        print("python line", file=sys.stderr)  # (pytest's sys.stderr is not descriptor 2, so it is not held back)
    err = capfd.readouterr().err.splitlines()
    assert [line for line in err if line != "python line"] == kept and "python line" in err
    with pytest.raises(RuntimeError):  # what was held back still comes out when the block raises
        with quiet_native_logs():
            os.write(2, b"native line before the error\n")
            raise RuntimeError("boom")
    assert capfd.readouterr().err == "native line before the error\n"
    with quiet_native_logs(enabled=False):  # -v: everything shows, as it happens
        os.write(2, (noise[1] + "\n").encode())
    assert capfd.readouterr().err == noise[1] + "\n"


def test_interrupt_is_one_error_line(monkeypatch, capsys):
    from lipnet_ko.text import normalize

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(normalize, "run", interrupted)
    assert main(["normalize", "x"]) == 130
    assert capsys.readouterr().err == "error: lipnet-ko normalize interrupted\n"
