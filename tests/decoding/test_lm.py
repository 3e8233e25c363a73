"""Tests for lipnet_ko.decoding.lm: hand-computed Kneser-Ney probabilities, normalisation, ARPA round trips and
KenLM-style files, the decoder's state tables against the model's own backoff, the CLI and the shipped LM."""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import random
from collections import Counter

import numpy as np
import pytest

from lipnet_ko.app.cli import main
from lipnet_ko.decoding.lm import (
    BOS,
    DEFAULT_LM_MIN_COUNTS,
    DEFAULT_LM_ORDER,
    DEFAULT_LM_PATHS,
    EOS,
    LEGACY_LM_PATH,
    UNK,
    NGramLM,
    _adjusted_counts,
    _count_ngrams,
    _discount_order,
    _discounts,
    build_default_lm,
    default_lm_text,
    load_default_lm,
    metadata_path,
    project_corpus,
    text_digest,
    text_to_units,
    train_kneser_ney,
)
from lipnet_ko.text.tokenizer import CharTokenizer, JamoTokenizer

KENLM_STYLE = """\\data\\
ngram 1=4
ngram 2=2

\\1-grams:
-1.0\t<unk>\t0
-99\t<s>\t-0.5
-0.5\ta\t-0.3
-0.6\t</s>

\\2-grams:
-0.2\t<s> a
-0.1\ta </s>

\\end\\
"""


def test_hand_computed_kneser_ney_bigram():
    """Corpus "a b", "a c", bigrams, every discount 0.5 (worked out by hand):

    continuation counts a=1 b=1 c=1 </s>=2 (total 5); vocabulary {a, b, c, </s>, <unk>} (5 units):
      p(a) = (1 - .5)/5 + gamma * 1/5 with gamma = .5 * 4/5 = .4  ->  .1 + .08 = .18;  p(</s>) = .3 + .08 = .38
    context <s>: a seen twice  ->  p(a|<s>) = 1.5/2 + (.5 * 1/2) * .18 = .795;  p(b|<s>) = .25 * .18 = .045
    context a: b and c once each  ->  p(b|a) = .5/2 + (.5 * 2/2) * .18 = .34;  p(</s>|a) = .5 * .38 = .19
    context b: </s> once  ->  p(</s>|b) = .5 + .5 * .38 = .69
    """
    lm = train_kneser_ney([["a", "b"], ["a", "c"]], order=2, discounts=[(0.5, 0.5, 0.5)] * 2)
    expected = {
        ("a", ()): 0.18, ("</s>", ()): 0.38, (UNK, ()): 0.08,
        ("a", (BOS,)): 0.795, ("b", (BOS,)): 0.045,
        ("b", ("a",)): 0.34, ("</s>", ("a",)): 0.19,
        ("</s>", ("b",)): 0.69,
    }  # fmt: skip
    for (word, context), p in expected.items():
        assert 10 ** lm.logprob(word, context) == pytest.approx(p, rel=1e-6), (word, context)
    assert 10 ** lm.score(["a", "b"]) == pytest.approx(0.795 * 0.34 * 0.69, rel=1e-6)
    assert lm.logprob("zzz", ("a",)) == pytest.approx(math.log10(0.5 * 0.08))  # unknown -> <unk>, backed off


def test_adjusted_counts_are_continuation_counts_except_at_the_top_and_after_bos():
    raw, n_sentences = _count_ngrams([["a", "b"], ["a", "c"]], order=3)
    assert n_sentences == 2
    assert raw[1] == Counter({(BOS, "a"): 2, ("a", "b"): 1, ("b", EOS): 1, ("a", "c"): 1, ("c", EOS): 1})
    adjusted = _adjusted_counts(raw)
    assert adjusted[2] == raw[2]  # the top order keeps raw counts
    assert adjusted[1] == Counter({(BOS, "a"): 2, ("a", "b"): 1, ("b", EOS): 1, ("a", "c"): 1, ("c", EOS): 1})
    assert adjusted[0] == Counter({("a",): 1, ("b",): 1, ("c",): 1, (EOS,): 2})  # only <s> precedes a; <s> dropped


def test_discounting_leaves_each_context_its_backoff_mass():
    counts = Counter({(BOS, "a"): 2, ("a", "b"): 1, ("a", "c"): 1, ("a", "d"): 5, ("b", EOS): 3})
    probs, gammas = _discount_order(counts, (0.5, 1.0, 1.5))
    assert probs[(BOS, "a")] == pytest.approx((2 - 1.0) / 2) and gammas[(BOS,)] == pytest.approx(1.0 / 2)
    assert probs[("a", "d")] == pytest.approx((5 - 1.5) / 7) and gammas[("a",)] == pytest.approx((0.5 * 2 + 1.5) / 7)
    for context, gamma in gammas.items():
        assert sum(p for g, p in probs.items() if g[:-1] == context) + gamma == pytest.approx(1.0), context


def test_rebuilding_the_legacy_lm_gives_the_same_bytes(tmp_path):
    """The closed-vocabulary 5-gram (no longer the default) still rebuilds byte for byte from project_corpus()."""
    path = tmp_path / LEGACY_LM_PATH.name
    train_kneser_ney([text_to_units(s) for s in project_corpus()], order=5).write_arpa(path)
    assert path.read_bytes() == LEGACY_LM_PATH.read_bytes(), (
        "the legacy 5-gram differs from a rebuild; if project_corpus() changed on purpose, rebuild it as data/lm/README.md says"
    )


def _arpa_header_counts(path) -> list[int]:
    """The ``ngram n=count`` lines of an ARPA file's \\data\\ section, read without parsing the model."""
    counts = []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("ngram "):
                counts.append(int(line.split("=")[1]))
            elif counts and not line.strip():
                break
    return counts


def test_shipped_default_lm_metadata_matches_its_recipe_and_the_pool_text():
    """Fast staleness check: the shipped LM's JSON names the recipe in lm.py and the current lm_text(); a pool rebuild
    without `lipnet-ko lm build-default` fails here, naming the command."""
    import hashlib
    import json

    path = DEFAULT_LM_PATHS["jamo"]
    meta = json.loads(metadata_path(path).read_text(encoding="utf-8"))
    assert meta["units"] == "jamo" and meta["order"] == DEFAULT_LM_ORDER
    assert meta["min_counts"] == (None if DEFAULT_LM_MIN_COUNTS is None else list(DEFAULT_LM_MIN_COUNTS))
    assert meta["text"] == "lipnet_ko.text.sentence_pool.lm_text()"
    text = default_lm_text()
    assert (meta["text_lines"], meta["text_sha256"]) == (len(text), text_digest(text)), (
        "the sentence pool's LM text changed since the default LM was built; run 'lipnet-ko lm build-default'"
    )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert meta["arpa_sha256"] == digest, "the ARPA file is not the one the metadata describes"
    assert _arpa_header_counts(path) == meta["ngrams"] and len(meta["ngrams"]) == DEFAULT_LM_ORDER


def test_rebuilding_the_default_lm_gives_the_shipped_bytes(tmp_path):
    """data/lm/README.md promises `lipnet-ko lm build-default` is byte-identical on the same pool files."""
    out = build_default_lm(tmp_path / DEFAULT_LM_PATHS["jamo"].name)
    assert out.read_bytes() == DEFAULT_LM_PATHS["jamo"].read_bytes(), (
        "the shipped default LM differs from a rebuild; if the pool or training changed on purpose, "
        "run 'lipnet-ko lm build-default'"
    )
    assert metadata_path(out).read_text(encoding="utf-8") == metadata_path(DEFAULT_LM_PATHS["jamo"]).read_text(encoding="utf-8")


def _tiny_pool(folder):
    rows = ["split\tsource\ttext", "test\tx\t공을 놓아", "train\tx\t컵을 갑 옆에 놓아", "train\tx\t공을 잡아",
            "val\tx\t갑을 놓아"]
    folder.mkdir()
    with gzip.open(folder / "pool.tsv.gz", "wt", encoding="utf-8") as handle:
        handle.write("\n".join(rows) + "\n")
    with gzip.open(folder / "lm_extra.txt.gz", "wt", encoding="utf-8") as handle:
        handle.write("컵을 잡아 옆에 놓아\n")
    return folder


def test_build_default_lm_trains_on_the_pool_lm_text_only_and_is_deterministic(tmp_path):
    from lipnet_ko.text.sentence_pool import lm_text

    folder = _tiny_pool(tmp_path / "pool")
    first = build_default_lm(tmp_path / "a.arpa.gz", folder=folder)
    second = build_default_lm(tmp_path / "b.arpa.gz", folder=folder)
    assert first.read_bytes() == second.read_bytes()
    lm = NGramLM.read_arpa(first)
    assert lm.order == DEFAULT_LM_ORDER and lm.units == "jamo"
    units = [text_to_units(s) for s in lm_text(folder)]
    expected = train_kneser_ney(units, order=DEFAULT_LM_ORDER, min_counts=DEFAULT_LM_MIN_COUNTS)
    assert lm.ngrams == NGramLM.read_arpa(_written(expected, tmp_path / "c.arpa.gz")).ngrams
    import json

    meta = json.loads(metadata_path(first).read_text(encoding="utf-8"))
    assert meta["text_lines"] == 3 and meta["text_sha256"] == text_digest(lm_text(folder))  # 2 train + 1 extra, no val/test


def _written(model, path):
    model.write_arpa(path)
    return path


def test_cli_build_default_refuses_a_directory(tmp_path, capsys):
    assert main(["lm", "build-default", "--out", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_discounts_follow_chen_and_goodman():
    counts = Counter({f"w{i}": c for i, c in enumerate([1] * 10 + [2] * 5 + [3] * 3 + [4] * 2 + [9])})
    d1, d2, d3 = _discounts(counts, order=1)  # Y = 10 / (10 + 2*5) = .5
    assert (d1, d2, d3) == pytest.approx((1 - 2 * 0.5 * 5 / 10, 2 - 3 * 0.5 * 3 / 5, 3 - 4 * 0.5 * 2 / 3))


def test_small_corpus_falls_back_to_fixed_discounts(caplog):
    lm = train_kneser_ney([["a"]], order=2)
    assert "unusable modified Kneser-Ney discounts" in caplog.text
    assert 10 ** lm.logprob("a", (BOS,)) > 0.5


def _random_corpus(seed: int, n: int = 400) -> list[list[str]]:
    rng = random.Random(seed)
    return [[rng.choice("abcdef") for _ in range(rng.randint(1, 10))] for _ in range(n)]


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_every_context_is_a_distribution(order):
    lm = train_kneser_ney(_random_corpus(order), order=order)
    words = [w for w in lm.vocab if w != BOS]
    rng = random.Random(0)
    contexts = [(), (BOS,), ("a",), ("f", "f", "f"), ("zz",), (BOS, "b", "c")]
    contexts += [tuple(rng.choice("abcdef") for _ in range(order - 1)) for _ in range(20)]
    for context in contexts:
        assert sum(10 ** lm.logprob(w, context) for w in words) == pytest.approx(1.0, abs=1e-9), context


@pytest.mark.parametrize("order", [2, 3, 5])
def test_a_pruned_model_is_still_a_distribution_and_drops_what_it_should(order):
    corpus = _random_corpus(order, n=150)
    full = train_kneser_ney(corpus, order=order)
    min_counts = [0] + [2] * (order - 1)
    lm = train_kneser_ney(corpus, order=order, min_counts=min_counts)
    raw, _ = _count_ngrams(corpus, order)
    for n in range(2, order + 1):
        assert set(lm.ngrams[n - 1]) == {g for g in full.ngrams[n - 1] if raw[n - 1][g] >= 2}
        kept = next(iter(lm.ngrams[n - 1]), None)
        if kept is not None:  # an n-gram that stays keeps its interpolated probability
            assert lm.ngrams[n - 1][kept][0] == pytest.approx(full.ngrams[n - 1][kept][0])
    words = [w for w in lm.vocab if w != BOS]
    rng = random.Random(1)
    contexts = [(), (BOS,), ("a",), (BOS, "b", "c")] + [tuple(rng.choice("abcdef") for _ in range(order - 1)) for _ in range(20)]
    for context in contexts:
        assert sum(10 ** lm.logprob(w, context) for w in words) == pytest.approx(1.0, abs=1e-9), context
    assert lm.token_table(CharTokenizer()).rows.shape[0] <= full.token_table(CharTokenizer()).rows.shape[0]


@pytest.mark.parametrize("min_counts", [[2, 2], [0, 3, 2], [0]])
def test_min_counts_must_fit_the_order(min_counts):
    with pytest.raises(ValueError, match="min_counts"):
        train_kneser_ney(_random_corpus(0, n=20), order=3, min_counts=min_counts)


def test_cli_build_with_min_counts(tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text("가나 다라\n가나 다라\n가나 마바\n", encoding="utf-8")
    out = tmp_path / "lm.arpa"
    assert main(["lm", "build", str(text), "--order", "3", "--min-counts", "0", "2", "2", "--out", str(out)]) == 0
    lm = NGramLM.read_arpa(out)
    assert all(g != ("ᄆ", "ᅡ", "ᄇ") for g in lm.ngrams[2])  # seen once: pruned
    assert main(["lm", "build", str(text), "--order", "3", "--min-counts", "0", "2", "--out", str(out)]) == 2
    assert "--min-counts needs one count per order" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".arpa", ".arpa.gz"])
def test_arpa_round_trip(tmp_path, suffix):
    lm = train_kneser_ney(_random_corpus(7), order=3)
    path = tmp_path / f"model{suffix}"
    lm.write_arpa(path)
    again = NGramLM.read_arpa(path)
    assert again.to_arpa() == lm.to_arpa()
    assert again.order == 3 and again.vocab == lm.vocab
    for level, level_again in zip(lm.ngrams, again.ngrams):
        assert level.keys() == level_again.keys()
        for g, (p, bo) in level.items():
            assert level_again[g] == pytest.approx((p, bo), abs=5e-7)
    lm.write_arpa(tmp_path / f"again{suffix}")
    assert (tmp_path / f"again{suffix}").read_bytes() == path.read_bytes()  # deterministic, even gzipped


def test_reads_a_kenlm_style_file(tmp_path):
    path = tmp_path / "kenlm.arpa"
    path.write_text(KENLM_STYLE, encoding="utf-8")
    lm = NGramLM.read_arpa(path)
    assert lm.logprob("a", (BOS,)) == pytest.approx(-0.2)
    assert lm.logprob(EOS, (BOS,)) == pytest.approx(-0.5 - 0.6)  # backoff(<s>) + p(</s>)
    assert lm.logprob("a", ("a",)) == pytest.approx(-0.3 - 0.5)
    assert lm.logprob("zz", ("a",)) == pytest.approx(-0.3 - 1.0)  # unknown word scores as <unk>
    assert lm.score(["a"]) == pytest.approx(-0.2 - 0.1)


def test_agrees_with_kenlm_when_installed(tmp_path):
    kenlm = pytest.importorskip("kenlm")
    lm = train_kneser_ney(_random_corpus(3, 1000), order=4)
    path = tmp_path / "m.arpa"
    lm.write_arpa(path)
    model = kenlm.Model(str(path))
    rng = random.Random(1)
    for _ in range(100):
        units = [rng.choice("abcdefz") for _ in range(rng.randint(0, 12))]
        assert lm.score(units) == pytest.approx(model.score(" ".join(units), bos=True, eos=True), abs=1e-4)


def test_malformed_arpa_names_the_line(tmp_path):
    path = tmp_path / "bad.arpa"
    path.write_text(KENLM_STYLE.replace("-0.2\t<s> a", "-0.2\t<s> a b c d"), encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.arpa:12"):
        NGramLM.read_arpa(path)
    path.write_text(KENLM_STYLE.replace("ngram 2=2", "ngram 2=3"), encoding="utf-8")
    with pytest.raises(ValueError, match="ngram 2=3"):
        NGramLM.read_arpa(path)


def _walk(table, ids) -> float:
    state, total = table.start, 0.0
    for tid in ids:
        total += table.rows[state, tid]
        state = table.next[state, tid]
    return total + table.end[state]


@pytest.mark.parametrize("order", [2, 3, 5])
def test_token_table_matches_backoff_scoring(order):
    """The decoder's dense tables (built at load) give the same sentence scores as ARPA backoff."""
    tok = CharTokenizer()
    sentences = ["bin blue at f two now", "set red by a one please", "lay white"]
    lm = train_kneser_ney([text_to_units(s, "char") for s in sentences], order=order)
    rng = random.Random(order)
    for _ in range(50):
        text = " ".join("".join(rng.choice("abeilnortuw'") for _ in range(rng.randint(1, 4))) for _ in range(rng.randint(1, 4)))
        ids = tok.encode(text)
        assert _walk(lm.token_table(tok), ids) == pytest.approx(lm.score(text_to_units(text, "char")) * math.log(10), abs=1e-9)


def test_token_table_of_a_kenlm_style_file(tmp_path):
    path = tmp_path / "kenlm.arpa"
    path.write_text(KENLM_STYLE.replace("\ta", "\tᄀ").replace(" a", " ᄀ"), encoding="utf-8")
    lm = NGramLM.read_arpa(path)
    assert lm.units == "jamo"
    tok = JamoTokenizer()
    g = tok.initial_ids[0]
    for ids in ([g], [g, g], [tok.medial_ids[0]], [g, tok.space_id, g]):
        units = [tok.tokens[i] if i != tok.space_id else "|" for i in ids]
        assert _walk(lm.token_table(tok), ids) == pytest.approx(lm.score(units) * math.log(10), abs=1e-9)


def test_text_to_units():
    assert text_to_units("가 닭", "jamo") == ["\u1100", "\u1161", "|", "\u1103", "\u1161", "\u11b0"]
    assert text_to_units("가 닭", "syllable") == ["가", "|", "닭"]
    assert text_to_units("Bin at", "char") == ["b", "i", "n", "|", "a", "t"]
    with pytest.raises(ValueError, match="unknown units"):
        text_to_units("가", "word")


def test_cli_build_info_and_score(tmp_path, capsys):
    text = tmp_path / "corpus.txt"
    text.write_text("공을 갑 삼 옆에 놓아\n컵을 을 사 위에 둬\n공을 을 삼 위에 놓아\n", encoding="utf-8")
    out = tmp_path / "lm" / "small.arpa"
    assert main(["lm", "build", str(text), "--order", "3", "--units", "jamo", "--out", str(out)]) == 0
    lm = NGramLM.read_arpa(out)
    assert lm.order == 3 and lm.units == "jamo"
    capsys.readouterr()
    assert main(["lm", "info", str(out)]) == 0
    assert "order=3" in capsys.readouterr().out
    assert main(["lm", "score", str(out), str(text)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert float(lines[0].split("\t")[0]) == pytest.approx(lm.score(text_to_units("공을 갑 삼 옆에 놓아")), abs=1e-3)
    assert lines[-1].startswith("perplexity")


def test_cli_corpus_writes_the_default_lm_training_text(tmp_path):
    out = tmp_path / "corpus.txt"
    assert main(["lm", "corpus", "--source", "grammar", "--grammar-samples", "10", "--out", str(out)]) == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) > 10 and all(lines)


def test_default_lm_prefers_korean_it_was_not_trained_on():
    from lipnet_ko.text.sentence_pool import load_pool

    lm = load_default_lm()
    assert lm.order == DEFAULT_LM_ORDER and lm.units == "jamo"
    held_out = load_pool("val")  # never in lm_text()
    ppl = lm.perplexity(text_to_units(s) for s in held_out)
    rng = random.Random(0)
    shuffled = ["".join(rng.sample(s, len(s))) for s in held_out]
    assert ppl < 8  # per jamo, on sentences the LM never saw (69-way uniform would be 69)
    assert lm.perplexity(text_to_units(s) for s in shuffled if "  " not in s and s.strip() == s) > 2 * ppl
    with pytest.raises(ValueError, match="no default LM"):
        load_default_lm("syllable")


def test_grid_lm_is_the_grammar_and_rebuilds_byte_for_byte(tmp_path):
    """The char tokenizer's default LM is GRID's grammar: grammatical sentences far likelier than a word out of its slot."""
    from lipnet_ko.data.corpora import grid_sentences
    from lipnet_ko.decoding.lm import GRID_LM_ORDER, build_grid_lm, default_lm_path

    sentences = grid_sentences()
    assert len(sentences) == len(set(sentences)) == 4 * 4 * 4 * 25 * 10 * 4
    assert default_lm_path(CharTokenizer()) == DEFAULT_LM_PATHS["char"]
    lm = load_default_lm("char")
    assert lm.order == GRID_LM_ORDER and lm.units == "char"
    good = lm.score(text_to_units("bin blue at f two now", "char"))
    swapped = lm.score(text_to_units("bin blue f at two now", "char"))  # letter and preposition exchanged
    unknown = lm.score(text_to_units("bin blue at f two later", "char"))  # not a GRID adverb
    assert good > swapped + 3 and good > unknown + 3  # log10: a thousand times likelier
    rebuilt = build_grid_lm(tmp_path / "grid.arpa.gz")
    assert rebuilt.read_bytes() == DEFAULT_LM_PATHS["char"].read_bytes(), (
        "the shipped GRID LM differs from its recipe; run 'lipnet-ko lm build-default --units char'"
    )
    meta = json.loads(metadata_path(DEFAULT_LM_PATHS["char"]).read_text(encoding="utf-8"))
    assert meta["text_lines"] == len(sentences) and meta["arpa_sha256"] == hashlib.sha256(rebuilt.read_bytes()).hexdigest()


def test_decoder_table_is_ready_after_loading():
    lm = load_default_lm()
    assert lm._tables  # built at load, not on first use
    table = lm.token_table(JamoTokenizer())
    assert table.rows.shape[1] == JamoTokenizer().vocab_size
    assert np.isfinite(table.rows[:, 2:]).all()


# -- the command line on bad input: one "error:" line on stderr, exit 2, nothing written --------------------


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    return errors[0]


@pytest.mark.parametrize(
    "content, extra",
    [
        ("", []),
        ("\n  \n\t\n\n", []),
        ("😀\n!!\n", ["--skip-unsupported"]),  # every line has characters jamo units cannot hold
    ],
    ids=["empty", "blank-lines", "nothing-left"],
)
def test_cli_build_without_sentences_is_an_error(tmp_path, capsys, content, extra):
    text = tmp_path / "corpus.txt"
    text.write_text(content, encoding="utf-8")
    out = tmp_path / "lm" / "x.arpa"
    assert main(["lm", "build", str(text), "--out", str(out), *extra]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "no sentences" in line and str(text) in line
    assert not out.exists() and not out.parent.exists()


def test_cli_build_reports_input_files_it_cannot_read(tmp_path, capsys):
    out = tmp_path / "x.arpa"
    assert main(["lm", "build", str(tmp_path / "missing.txt"), "--out", str(out)]) == 2
    assert "missing.txt" in _one_error_line(capsys.readouterr().err)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("공을 놓아\n".encode("utf-8") + b"caf\xe9\n")
    assert main(["lm", "build", str(latin1), "--out", str(out)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "latin1.txt:2" in line and "UTF-8" in line
    assert main(["lm", "build", str(latin1), "--order", "0", "--out", str(out)]) == 2
    assert "--order" in _one_error_line(capsys.readouterr().err)
    assert not out.exists()


def test_cli_build_refuses_characters_its_units_cannot_hold(tmp_path, capsys, caplog):
    """Asked for jamo units, the user gets jamo units: an emoji stops the build (naming the line, the
    character and the flag) instead of silently turning the LM into a character-level one."""
    text = tmp_path / "corpus.txt"
    text.write_text("공을 놓아\n컵을 둬 😀\n공을 위에 둬\n", encoding="utf-8")
    out = tmp_path / "small.arpa"
    assert main(["lm", "build", str(text), "--order", "2", "--out", str(out)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"{text}:2" in line and "U+1F600" in line and "--skip-unsupported" in line
    assert not out.exists()
    with caplog.at_level("WARNING", logger="lipnet_ko.decoding.lm"):
        assert main(["lm", "build", str(text), "--order", "2", "--skip-unsupported", "--out", str(out)]) == 0
    assert "skipped 1 of 3 lines" in caplog.text and "U+1F600" in caplog.text
    lm = NGramLM.read_arpa(out)
    assert lm.units == "jamo" and "😀" not in lm.vocab
    kept = train_kneser_ney([text_to_units("공을 놓아"), text_to_units("공을 위에 둬")], order=2)
    assert lm.to_arpa() == kept.to_arpa()  # exactly the model of the other two lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.txt", "small.arpa"]  # no temporary file left
    assert main(["lm", "build", str(text), "--units", "char", "--out", str(out)]) == 2  # Hangul is not a GRID letter
    assert "char units" in _one_error_line(capsys.readouterr().err)


def test_cli_build_help_says_what_happens_to_unsupported_characters(capsys):
    with pytest.raises(SystemExit):
        main(["lm", "build", "--help"])
    assert "--skip-unsupported" in capsys.readouterr().out


def test_unsupported_characters():
    from lipnet_ko.decoding.lm import unsupported_characters

    assert unsupported_characters("다람쥐 헌 쳇바퀴에 타고파") == []
    assert unsupported_characters("컵 😀 a 1 | 😀", "jamo") == ["😀", "a", "1", "|"]  # "|" would pose as the space unit
    assert unsupported_characters("bin blue at f two now", "char") == []
    assert unsupported_characters("Bin 가 2", "char") == ["가", "2"]
    assert unsupported_characters("가 ᄀ", "syllable") == ["ᄀ"]


def _truncated_gzip(tmp_path):
    raw = DEFAULT_LM_PATHS["jamo"].read_bytes()
    path = tmp_path / "half.arpa.gz"
    path.write_bytes(raw[: len(raw) // 2])
    return path


BAD_ARPA = {  # name -> (bytes or None for a missing file, what the message must say)
    "missing.arpa": (None, "no ARPA file"),
    "hello.arpa": (b"hello\nworld\n", "no \\data\\ section"),
    "garbage.arpa.gz": (b"garbage", "not a gzip file"),
    "binary.arpa": (b"\x00\xff\xfe\x80" * 10, "UTF-8"),
    "no-end.arpa": (KENLM_STYLE.replace("\\end\\\n", "").encode(), "truncated"),
    "cut.arpa": (KENLM_STYLE[: KENLM_STYLE.index("\\2-grams:")].encode(), "truncated"),
    "bad-count.arpa": (KENLM_STYLE.replace("ngram 2=2", "ngram 2=two").encode(), "ngram"),
    "bad-section.arpa": (KENLM_STYLE.replace("\\2-grams:", "\\two-grams:").encode(), "two-grams"),
    "stray-word.arpa": (KENLM_STYLE.replace("<s> a", "<s> b").encode(), "'b'"),
}


def _bad_arpa(tmp_path, name):
    """Writes the damaged LM file ``name`` (a BAD_ARPA entry or "half.arpa.gz"): (its path, a word its error must name)."""
    if name == "half.arpa.gz":
        return _truncated_gzip(tmp_path), "truncated"
    data, expected = BAD_ARPA[name]
    path = tmp_path / name
    if data is not None:
        path.write_bytes(data)
    return path, expected


@pytest.mark.parametrize("name", [*BAD_ARPA, "half.arpa.gz"])
def test_read_arpa_names_the_file_and_the_problem(tmp_path, name):
    path, expected = _bad_arpa(tmp_path, name)
    with pytest.raises((ValueError, OSError)) as info:
        NGramLM.read_arpa(path)
    assert str(path) in str(info.value) and expected in str(info.value)


@pytest.mark.parametrize("command", ["info", "score"])
@pytest.mark.parametrize("name", ["missing.arpa", "hello.arpa", "garbage.arpa.gz", "half.arpa.gz", "stray-word.arpa"])
def test_cli_reports_a_bad_arpa_file(tmp_path, capsys, command, name):
    path, expected = _bad_arpa(tmp_path, name)
    text = tmp_path / "text.txt"
    text.write_text("공을 놓아\n", encoding="utf-8")
    assert main(["lm", command, str(path), *([str(text)] if command == "score" else [])]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(path) in line and expected in line


def test_cli_score_reports_bad_text(tmp_path, capsys):
    lm = tmp_path / "kenlm.arpa"
    lm.write_text(KENLM_STYLE, encoding="utf-8")
    assert main(["lm", "score", str(lm), str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt" in _one_error_line(capsys.readouterr().err)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    assert main(["lm", "score", str(lm), str(empty)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "no sentences" in line and "empty.txt" in line


def test_gzip_arpa_with_a_plain_name_and_the_read_alias(tmp_path):
    """``NGramLM.read`` is what transcribe/evaluate call; gzip data is recognised by its magic bytes."""
    path = tmp_path / "kenlm.arpa"
    path.write_bytes(gzip.compress(KENLM_STYLE.encode("utf-8")))
    assert NGramLM.read(path).logprob("a", (BOS,)) == pytest.approx(-0.2)
