"""Tests of lipnet_ko.text.sentence_pool: build on tiny fixture sources, and the shipped pool's properties."""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import pytest

from lipnet_ko.text import sentence_pool as sp

HTML = """<html><head><title>제목은 버립니다.</title></head><body>
<h1>서식 지정</h1>
<p>문서를 저장하려면 파일 메뉴를 엽니다. LibreOffice 창이 열립니다. 버전 3 이상이 필요합니다.</p>
<p>이 옵션을 선택하면 모든 페이지의 머리글과 바닥글이 같은 모양으로 바뀌고, 첫 페이지와 나머지 페이지가 구분되지 않으며,
여러 구역에서 같은 설정이 쓰입니다.</p>
<p>표시</p>
</body></html>
"""
LINES = "오늘 날씨가 좋네요\n오늘 날씨가 좋네요\n안녕\n밥 먹었어?\n"


def fixture_sources(tmp_path: Path, *, with_html: bool = True) -> list[sp.Source]:
    (tmp_path / "lines").mkdir(exist_ok=True)
    (tmp_path / "lines" / "mine.txt").write_text(LINES, encoding="utf-8")
    html_root = tmp_path / "html"
    if with_html:
        html_root.mkdir(exist_ok=True)
        (html_root / "a.html").write_text(HTML, encoding="utf-8")
    return [
        sp.Source("mine", "project", "MIT", tmp_path / "lines", ("*.txt",), "lines"),
        sp.Source("help", "debian:no-such-package-ko", "MPL-2.0", html_root, ("*.html",), "html"),
    ]


def test_filters_keep_only_hangul_sentences_of_clip_length():
    assert sp.accept("밥 먹었어?") == "밥 먹었어"
    assert sp.accept("안녕") is None  # one eojeol
    assert sp.accept("LibreOffice 창이 열립니다.") is None  # Latin
    assert sp.accept("버전 3 이상이 필요합니다.") is None  # digit: reading depends on context
    assert sp.accept(" ".join(["가나"] * 13)) is None  # 13 eojeol
    assert sp.accept(" ".join(["가나다라마"] * 9)) is None  # 45 syllables > MAX_SYLLABLES
    assert sp.accept("서식 지정", needs_ending=True) is None  # a heading, not a sentence
    assert sp.accept("파일 메뉴를 엽니다.", needs_ending=True) == "파일 메뉴를 엽니다"


def test_split_is_by_hash_of_the_text_and_stable():
    texts = [f"문장 번호 {'가나다라마바사아자차'[i % 10]}{'하파타카'[i // 10 % 4]}" for i in range(40)]
    first = [sp.split_of(t) for t in texts]
    assert first == [sp.split_of(t) for t in reversed(texts)][::-1]
    shares = [sp.split_of(f"{a}{b} 문장") for a in "가나다라마바사아자차카타파하" for b in "가나다라마바사아자차카타파하"]
    assert 0.03 < shares.count("test") / len(shares) < 0.15
    assert 0.01 < shares.count("val") / len(shares) < 0.10


def test_build_dedupes_records_provenance_and_lm_extra(tmp_path):
    result = sp.build_pool(fixture_sources(tmp_path))
    texts = [text for _, _, text in result.rows]
    assert sorted(texts) == ["문서를 저장하려면 파일 메뉴를 엽니다", "밥 먹었어", "오늘 날씨가 좋네요"]
    assert len(texts) == len(set(texts))
    by_text = {text: (split, source) for split, source, text in result.rows}
    assert by_text["밥 먹었어"][1] == "mine" and by_text["문서를 저장하려면 파일 메뉴를 엽니다"][1] == "help"
    assert all(split == sp.split_of(text) for split, _, text in result.rows)
    assert result.sources["mine"]["duplicates"] == 1
    assert result.sources["help"]["licence"] == "MPL-2.0" and result.sources["help"]["files"] == 1
    # the over-long sentence is not in the pool but is LM text, whole and cut at its commas
    assert result.lm_extra and all(len(line) > 0 for line in result.lm_extra)
    assert any(line.startswith("이 옵션을 선택하면") for line in result.lm_extra)
    assert not set(result.lm_extra) & set(texts)


def test_build_twice_is_byte_identical_and_loads(tmp_path):
    result = sp.build_pool(fixture_sources(tmp_path))
    sp.write_pool(result, tmp_path / "one")
    sp.write_pool(sp.build_pool(fixture_sources(tmp_path)), tmp_path / "two")
    for name in (sp.POOL_FILE, sp.LM_FILE, sp.SOURCES_FILE):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    loaded = {split: sp.load_pool(split, tmp_path / "one") for split in sp.SPLITS}
    assert sorted(sum(loaded.values(), [])) == sorted(text for _, _, text in result.rows)
    assert sp.sources_info(tmp_path / "one")["sources"]["help"]["package"] == "debian:no-such-package-ko"


def test_held_out_sentences_never_reach_train_or_lm(tmp_path, monkeypatch):
    monkeypatch.setattr(sp, "split_of", lambda text: "test" if text == "밥 먹었어" else "train")
    (tmp_path / "lines").mkdir()
    (tmp_path / "lines" / "x.txt").write_text("밥 먹었어\n밥 먹었어 빨리\n물 마셔요\n", encoding="utf-8")
    result = sp.build_pool([sp.Source("x", "project", "MIT", tmp_path / "lines", ("*.txt",), "lines")])
    assert [(s, t) for s, _, t in result.rows] == [("test", "밥 먹었어"), ("train", "물 마셔요")]
    assert result.dropped_contains_held_out == 1


def test_corrupt_pool_file_is_a_value_error_naming_it(tmp_path):
    sp.write_pool(sp.build_pool(fixture_sources(tmp_path)), tmp_path / "pool")
    path = tmp_path / "pool" / sp.POOL_FILE
    path.write_bytes(b"not gzip")
    sp.read_rows.cache_clear()
    with pytest.raises(ValueError, match=str(path)):
        sp.load_pool("train", tmp_path / "pool")
    path.write_bytes(gzip.compress((sp.POOL_HEADER + "\ntrain\tx\tabc\n").encode(), mtime=0))
    sp.read_rows.cache_clear()
    with pytest.raises(ValueError, match="line 2"):
        sp.load_pool("train", tmp_path / "pool")
    with pytest.raises(ValueError, match="split must be"):
        sp.load_pool("dev")


def test_shipped_pool_counts_and_no_leaks():
    train, val, test = (sp.load_pool(split) for split in sp.SPLITS)
    assert len(train) >= 10_000 and len(set(train)) == len(train)
    assert len({ch for text in train for ch in text if ch != " "}) >= 1_500
    assert not set(test) & set(train) and not set(val) & set(train) and not set(val) & set(test)
    sources_in_test = {source for split, source, _ in sp.read_rows() if split == "test"}
    assert {"everyday", "libreoffice-help"} <= sources_in_test
    held_out = val + test
    lines = sp.lm_text()
    assert not set(held_out) & set(lines)
    assert not [line for line in lines if any(h in line for h in held_out if len(h) <= len(line))]
    info = sp.sources_info()
    assert all(source["licence"] and source["version"] for source in info["sources"].values())


def run_cli(tmp_path, sources, out):
    args = argparse.Namespace(out=str(out))
    return sp.run(args, sources_factory=lambda: sources)


def test_cli_missing_source_package_is_named_and_exit_1(tmp_path, capsys):
    code = run_cli(tmp_path, fixture_sources(tmp_path, with_html=False), tmp_path / "out")
    err = capsys.readouterr().err
    assert code == 1
    assert "error: source help:" in err and "apt-get install no-such-package-ko" in err
    assert "1 of 2 sources missing (help)" in err
    assert sp.load_pool("train", tmp_path / "out") or sp.load_pool("test", tmp_path / "out")


def test_cli_exit_0_and_2(tmp_path, capsys):
    assert run_cli(tmp_path, fixture_sources(tmp_path), tmp_path / "out") == 0
    assert "wrote" in capsys.readouterr().out
    (tmp_path / "file").write_text("x")
    assert run_cli(tmp_path, fixture_sources(tmp_path), tmp_path / "file") == 2
    assert capsys.readouterr().err.startswith("error: --out")
    empty = [sp.Source("none", "debian:nothing-ko", "MIT", tmp_path / "nowhere", ("*.html",), "html")]
    assert run_cli(tmp_path, empty, tmp_path / "out2") == 2
    assert not (tmp_path / "out2").exists()
