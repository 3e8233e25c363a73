"""Tests for lipnet_ko.decoding.search against independent oracles: brute-force enumeration of alignments,
tf.nn.ctc_beam_search_decoder / ctc_greedy_decoder, a numpy CTC forward pass, unicodedata NFC, and the
LM's own dictionary-based scoring."""

from __future__ import annotations

import itertools
import unicodedata

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lipnet_ko.decoding.search import DecodingOptions, decode, greedy_search, hangul_automaton, log_softmax
from lipnet_ko.decoding.lexicon import Lexicon
from lipnet_ko.decoding.lm import text_to_units, train_kneser_ney
from lipnet_ko.text.metrics import cer
from synthetic_logits import align, flatter, trained_like, viseme_confused
from lipnet_ko.text.tokenizer import CharTokenizer, JamoTokenizer

TOK = JamoTokenizer()
V = TOK.vocab_size
NO_PRUNING = dict(token_min_logprob=-np.inf, beam_threshold=np.inf)
PLAIN = DecodingOptions(beam_width=16, hangul_constraint=False, **NO_PRUNING)


def ctc_log_prob(log_probs: np.ndarray, ids) -> float:
    """Exact log P(ids | log_probs) by the CTC forward algorithm (float64, blank 0)."""
    ext = [0]
    for c in ids:
        ext += [int(c), 0]
    s = len(ext)
    alpha = np.full(s, -np.inf)
    alpha[0] = log_probs[0, 0]
    if s > 1:
        alpha[1] = log_probs[0, ext[1]]
    skip = np.array([i >= 2 and ext[i] != 0 and ext[i] != ext[i - 2] for i in range(s)])
    for t in range(1, len(log_probs)):
        new = alpha.copy()
        new[1:] = np.logaddexp(new[1:], alpha[:-1])
        new[2:] = np.where(skip[2:], np.logaddexp(new[2:], alpha[:-2]), new[2:])
        alpha = new + log_probs[t, ext]
    return float(np.logaddexp(alpha[-1], alpha[-2]) if s > 1 else alpha[-1])


def brute_force(log_probs: np.ndarray, active: list[int]) -> dict[tuple[int, ...], float]:
    """Sum the probability of every alignment over the ``active`` ids, grouped by collapsed labeling."""
    sums: dict[tuple[int, ...], float] = {}
    for path in itertools.product(active, repeat=len(log_probs)):
        lp = float(sum(log_probs[t, c] for t, c in enumerate(path)))
        key = tuple(TOK.collapse(path))
        sums[key] = float(np.logaddexp(sums.get(key, -np.inf), lp))
    return sums


def tiny_logits(rng, t_len: int, active: list[int]) -> np.ndarray:
    """Random logits over ``active`` ids only; every other id has probability zero."""
    x = np.full((t_len, V), -np.inf)
    x[:, active] = rng.normal(0, 1.5, (t_len, len(active)))
    return log_softmax(x)


def tf_beam(logits: np.ndarray, beam: int, top_paths: int = 1, lengths=None):
    """tf.nn.ctc_beam_search_decoder with our blank (0) moved to TF's (last); returns ids and scores."""
    tf = pytest.importorskip("tensorflow")
    b, t, _ = logits.shape
    moved = np.concatenate([logits[..., 1:], logits[..., :1]], axis=-1).transpose(1, 0, 2).astype(np.float32)
    lengths = np.full(b, t, np.int32) if lengths is None else np.asarray(lengths, np.int32)
    decoded, scores = tf.nn.ctc_beam_search_decoder(moved, lengths, beam_width=beam, top_paths=top_paths)
    paths = []
    for j in range(top_paths):
        dense = tf.sparse.to_dense(decoded[j], default_value=-1).numpy()
        paths.append([tuple(int(v) + 1 for v in row if v >= 0) for row in dense])
    return [[(paths[j][i], float(scores[i, j])) for j in range(top_paths)] for i in range(b)]


def well_formed(ids) -> bool:
    """Independent check of Hangul structure: the ids survive decode -> encode unchanged."""
    return TOK.encode(TOK.decode(ids)) == list(ids)


# -- greedy ------------------------------------------------------------------------------------


def test_greedy_is_the_argmax_collapse():
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (20, 30, V)).astype(np.float32)
    results = decode(logits, None, TOK, DecodingOptions(beam_width=1))
    decoded, _ = tf.nn.ctc_greedy_decoder(logits.transpose(1, 0, 2), np.full(20, 30, np.int32), blank_index=0)
    dense = tf.sparse.to_dense(decoded[0], default_value=-1).numpy()
    for i, result in enumerate(results):
        best = logits[i].argmax(-1)
        collapsed = [int(c) for j, c in enumerate(best) if c != 0 and (j == 0 or c != best[j - 1])]
        assert list(result.ids) == collapsed == [int(v) for v in dense[i] if v >= 0]
        assert result.text == TOK.decode(collapsed)
        assert result.score == pytest.approx(log_softmax(logits[i]).max(-1).sum())


def test_greedy_of_an_empty_utterance():
    result = greedy_search(np.zeros((0, V)), TOK)
    assert (result.text, result.score, result.ids) == ("", 0.0, ())


# -- exactness against brute force ---------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_unconstrained_prefix_probabilities_are_exact(seed):
    """With a beam wider than the number of labelings, every labeling's score is its exact probability
    (all alignments summed), at every frame."""
    rng = np.random.default_rng(seed)
    active = [0, 5, 9, 30]  # blank and three tokens
    log_probs = tiny_logits(rng, 6, active)
    for t in range(1, 7):
        exact = brute_force(log_probs[:t], active)
        options = DecodingOptions(beam_width=len(exact), nbest=len(exact), hangul_constraint=False, **NO_PRUNING)
        result = decode(log_probs[None, :t], None, TOK, options)[0]
        got = dict(zip(result.nbest_ids, (s for _, s in result.nbest)))
        assert set(got) == set(exact)
        for ids, score in exact.items():
            assert got[ids] == pytest.approx(score, abs=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_constrained_scores_are_exact_for_well_formed_labelings(seed):
    """Under the automaton, a wide beam returns exactly the well-formed labelings that may end
    (decode -> encode round trip), each with its exact probability."""
    rng = np.random.default_rng(seed)
    active = [0, TOK.space_id, TOK.initial_ids[0], TOK.medial_ids[0], TOK.final_ids[3]]  # blank, space, ㄱ, ㅏ, ㄴ
    log_probs = tiny_logits(rng, 6, active)
    for t in (3, 5, 6):
        exact = {ids: s for ids, s in brute_force(log_probs[:t], active).items() if well_formed(ids)}
        options = DecodingOptions(beam_width=400, nbest=len(exact), **NO_PRUNING)
        result = decode(log_probs[None, :t], None, TOK, options)[0]
        got = dict(zip(result.nbest_ids, (s for _, s in result.nbest)))
        assert set(got) == set(exact)
        for ids, score in exact.items():
            assert got[ids] == pytest.approx(score, abs=1e-9)


# -- against TensorFlow ----------------------------------------------------------------------------


def test_matches_tf_on_200_trained_like_logit_matrices():
    rng = np.random.default_rng(1)
    logits = np.stack([trained_like(align(rng.integers(1, V, 20).tolist(), 60, rng), V, rng, margin=8.0) for _ in range(200)])
    ours = decode(logits, None, TOK, PLAIN)
    theirs = tf_beam(logits, PLAIN.beam_width)
    for i, (mine, (tf_ids, tf_score)) in enumerate(zip(ours, (paths[0] for paths in theirs))):
        assert mine.ids == tf_ids
        # Both scores are sums over the alignments their beams kept: at most the exact probability, and
        # close to each other (the beams may keep different low-probability prefixes that feed the answer).
        exact = ctc_log_prob(log_softmax(logits[i]), mine.ids)
        assert mine.score <= exact + 1e-9 and tf_score <= exact + 1e-4
        assert mine.score == pytest.approx(tf_score, abs=0.02)


def test_agrees_with_tf_on_flat_logits_and_each_difference_is_tfs_quirk():
    """On flat random logits our top hypothesis equals TF's at least 95% of the time. TF's beam can lose
    a member within a step (an entry pushed out of its top-N heap is reset, then re-created from its
    parent with only its extension mass), so where the answers differ we find the first frame at which
    the two beams differ and check that (1) up to the frame before, both beams hold the same prefixes
    with the same scores, and (2) at that frame TF kept a prefix that scores lower than one it dropped,
    or kept one with less mass than the previous beam gives it. Both answers are also scored exactly."""
    rng = np.random.default_rng(2)
    beam, t_len = 16, 30
    logits = rng.normal(0, 2, (200, t_len, V))
    ours = decode(logits, None, TOK, PLAIN)
    theirs = [paths[0] for paths in tf_beam(logits, beam)]
    differ = [i for i in range(200) if ours[i].ids != theirs[i][0]]
    assert len(differ) <= 10, f"top hypotheses differ on {len(differ)} of 200"
    wide = DecodingOptions(beam_width=beam, nbest=beam, hangul_constraint=False, **NO_PRUNING)
    for i in differ:
        log_probs = log_softmax(logits[i])
        exact_ours, exact_tf = ctc_log_prob(log_probs, ours[i].ids), ctc_log_prob(log_probs, theirs[i][0])
        assert ours[i].score <= exact_ours + 1e-9  # a beam score never exceeds the exact probability
        print(f"utterance {i}: exact log P ours {exact_ours:.4f} (beam {ours[i].score:.4f}), TF {exact_tf:.4f}")
        for t in range(1, t_len + 1):
            mine = decode(logits[i : i + 1], [t], TOK, wide)[0]
            mine = dict(zip(mine.nbest_ids, (s for _, s in mine.nbest)))
            tf_now = dict(tf_beam(logits[i : i + 1], beam, top_paths=min(beam, len(mine)), lengths=[t])[0])
            if set(tf_now) == set(mine):
                assert all(tf_now[p] == pytest.approx(mine[p], abs=1e-3) for p in mine)
                continue
            dropped = [mine[p] for p in mine if p not in tf_now]
            lowest_kept = min(tf_now.values())
            lost_mass = max((mine[p] - tf_now[p] for p in mine if p in tf_now), default=0.0)
            assert max(dropped) > lowest_kept + 1e-3 or lost_mass > 1e-3, f"utterance {i}, frame {t}"
            break
        else:
            pytest.fail(f"utterance {i}: final answers differ but the beams never do")


# -- the Hangul constraint -----------------------------------------------------------------------


def test_automaton_states():
    fsa = hangul_automaton(TOK)
    start, space, initial, medial, final = range(5)
    assert fsa.next[start, TOK.initial_ids[0]] == initial
    assert fsa.next[start, TOK.medial_ids[0]] == -1  # a vowel needs its initial (silent ㅇ is explicit)
    assert fsa.next[start, TOK.space_id] == -1
    assert fsa.next[initial, TOK.medial_ids[9]] == medial  # compound vowels are single medial tokens
    assert fsa.next[medial, TOK.final_ids[2]] == final  # double finals (ㄳ) are single final tokens
    assert fsa.next[final, TOK.final_ids[0]] == -1
    assert fsa.next[final, TOK.initial_ids[11]] == initial
    assert fsa.next[space, TOK.space_id] == -1
    assert list(fsa.accept) == [True, False, False, True, True]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    logits=arrays(np.float64, st.tuples(st.integers(1, 24), st.just(V)), elements=st.floats(-6, 6)),
    beam=st.sampled_from([2, 4, 8]),
)
def test_constrained_outputs_are_well_formed_hangul(logits, beam):
    log_probs = log_softmax(logits)
    options = DecodingOptions(beam_width=beam, nbest=beam, **NO_PRUNING)
    result = decode(log_probs[None], None, TOK, options)[0]
    for (text, score), ids in zip(result.nbest, result.nbest_ids):
        joined = "".join(TOK.tokens[i] for i in ids)
        assert unicodedata.normalize("NFC", joined) == text  # recomposes exactly...
        assert all(ch == " " or 0xAC00 <= ord(ch) <= 0xD7A3 for ch in text)  # ...to syllables: no orphan jamo
        assert text == text.strip() and "  " not in text
        # a beam score sums some of the labeling's alignments: never more than its exact probability,
        # which in turn is at most the best unconstrained labeling's
        assert score <= ctc_log_prob(log_probs, ids) + 1e-9


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    active=st.lists(st.sampled_from(range(1, V)), min_size=1, max_size=4, unique=True),
    t_len=st.integers(1, 6),
    beam=st.sampled_from([2, 4, 400]),
)
def test_constrained_best_never_beats_the_unconstrained_best(data, active, t_len, beam):
    """Against the exact unconstrained optimum (every alignment enumerated), on random logits over a
    few tokens. (A same-width unconstrained *beam* can miss that optimum, so it is not the reference.)"""
    active = [0] + sorted(active)
    values = data.draw(arrays(np.float64, (t_len, len(active)), elements=st.floats(-6, 6)))
    logits = np.full((t_len, V), -np.inf)
    logits[:, active] = values
    log_probs = log_softmax(logits)
    best_any = max(brute_force(log_probs, active).values())
    result = decode(log_probs[None], None, TOK, DecodingOptions(beam_width=beam, **NO_PRUNING))[0]
    assert result.score <= best_any + 1e-9
    assert well_formed(result.ids)
    if beam == 400:  # wide enough to be exact: the answer is the most probable well-formed labeling
        best_ok = max(s for ids, s in brute_force(log_probs, active).items() if well_formed(ids))
        assert result.score == pytest.approx(best_ok, abs=1e-9)


def test_decode_respects_lengths_and_batch_order():
    rng = np.random.default_rng(6)
    logits = rng.normal(0, 3, (3, 40, V))
    results = decode(logits, [40, 25, 0], TOK, DecodingOptions(beam_width=8))
    alone = decode(logits[1:2, :25], None, TOK, DecodingOptions(beam_width=8))[0]
    assert results[1] == alone
    assert results[2].text == ""


# -- LM fusion ------------------------------------------------------------------------------------


def _sentence_logits(text: str, rng, margin=10.0):
    labels = align(TOK.encode(text), 2 * len(TOK.encode(text)) + 6, rng)
    return log_softmax(trained_like(labels, V, rng, margin=margin))


def test_fused_score_is_acoustic_plus_weighted_lm_plus_bonus():
    """The beam's score of its answer = exact CTC log-prob + alpha * ln P_lm + beta * tokens, with the LM
    probability from the model's own dictionary-based backoff (not the decoder's state tables)."""
    corpus = ["가방 안에 책", "나는 학교에 가요", "가방 안에 공", "나는 집에 가요"]
    lm = train_kneser_ney([text_to_units(s) for s in corpus], order=3)
    rng = np.random.default_rng(7)
    log_probs = _sentence_logits("나는 학교에 가요", rng)
    options = DecodingOptions(beam_width=256, lm=lm, lm_weight=0.7, insertion_bonus=0.3, **NO_PRUNING)  # wide: exact
    result = decode(log_probs[None], None, TOK, options)[0]
    assert result.text == "나는 학교에 가요"
    units = text_to_units(result.text)
    expected = ctc_log_prob(log_probs, result.ids) + 0.7 * np.log(10) * lm.score(units) + 0.3 * len(result.ids)
    assert result.score == pytest.approx(expected, abs=1e-6)


def test_lm_must_match_the_tokenizer():
    lm = train_kneser_ney([text_to_units("가나", "syllable")], order=2)
    with pytest.raises(ValueError, match="syllable units"):
        decode(np.zeros((1, 5, V)), None, TOK, DecodingOptions(lm=lm))


def test_beam_and_lm_cut_viseme_confusion_cer_by_25_percent():
    """The quality target on a fixed seed: beam + LM lowers syllable CER against greedy by >= 25% relative
    on logits that confuse look-alike jamo (benchmarks/decoder_quality.py reports the full figure)."""
    from lipnet_ko.decoding.lm import load_default_lm
    from lipnet_ko.text.sentences import load_free_sentences, split_free_sentences

    _, held_out = split_free_sentences(load_free_sentences(), 0.2, seed=0)  # not in the LM's training text
    rng = np.random.default_rng(0)
    refs, logits = held_out[:30], []
    for text in refs:
        ids = TOK.encode(text)
        logits.append(viseme_confused(align(ids, 2 * len(ids) + 6, rng), TOK, rng, true_edge=1.5))
    greedy = [decode(x[None], None, TOK, DecodingOptions(beam_width=1))[0].text for x in logits]
    fused = [decode(x[None], None, TOK, DecodingOptions(beam_width=32, lm=load_default_lm()))[0].text for x in logits]
    before, after = cer(refs, greedy), cer(refs, fused)
    assert after <= 0.75 * before, f"greedy CER {before:.3f}, beam+LM CER {after:.3f}"


# -- lexicon ----------------------------------------------------------------------------------------


def test_lexicon_confines_output_to_its_words():
    lexicon = Lexicon(["공을", "컵을", "갑", "놓아"], TOK)
    rng = np.random.default_rng(8)
    labels = align(TOK.encode("공을 갑 놓아"), 40, rng)
    logits = viseme_confused(labels, TOK, rng, true_edge=0.0)  # the video alone cannot tell ㄱ from ㅋ
    result = decode(logits[None], None, TOK, DecodingOptions(beam_width=16, lexicon=lexicon, nbest=4))[0]
    for text, _ in result.nbest:
        assert all(word in lexicon for word in text.split())
    assert "공을" in lexicon and "공" not in lexicon and "고양이" not in lexicon


def test_lexicon_for_english_grid_words():
    chars = CharTokenizer()
    lexicon = Lexicon(["bin", "blue", "at", "f", "two", "now"], chars)
    probs = np.full((4, chars.vocab_size), 1e-4)
    for t, letter in enumerate("bi"):
        probs[t, chars.encode(letter)[0]] = 1.0
    probs[2, chars.encode("m")[0]], probs[2, chars.encode("n")[0]] = 0.6, 0.4  # "bim" is not a word
    probs[3, 0] = 1.0
    logits = np.log(probs)[None]
    assert decode(logits, None, chars, DecodingOptions(beam_width=1))[0].text == "bim"
    assert decode(logits, None, chars, DecodingOptions(beam_width=8, lexicon=lexicon))[0].text == "bin"
    rng = np.random.default_rng(9)
    labels = align(chars.encode("bin blue at f two now"), 60, rng)
    noisy = flatter(labels, chars.vocab_size, rng, margin=(1.0, 3.0))
    result = decode(noisy[None], None, chars, DecodingOptions(beam_width=32, lexicon=lexicon, nbest=8))[0]
    for text, _ in result.nbest:
        assert all(word in lexicon for word in text.split())


# -- options ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(beam_width=0), "beam_width"),
        (dict(beam_width=4, nbest=5), "nbest=5 cannot exceed beam_width=4"),
        (dict(beam_width=1, lm=object()), "lm requires beam_width > 1"),
        (dict(lm_weight=-1.0), "lm_weight"),
        (dict(beam_threshold=0.0), "beam_threshold"),
    ],
)
def test_invalid_options_name_the_conflict(kwargs, message):
    with pytest.raises(ValueError, match=message):
        decode(np.zeros((1, 3, V)), None, TOK, DecodingOptions(**kwargs))


def test_shape_errors():
    with pytest.raises(ValueError, match="69"):
        decode(np.zeros((1, 3, 10)), None, TOK)
    with pytest.raises(ValueError, match=r"\[batch, time, vocab\]"):
        decode(np.zeros((3, V)), None, TOK)
    with pytest.raises(ValueError, match="logit_lengths"):
        decode(np.zeros((2, 3, V)), [4, 1], TOK)


def test_ctc_log_likelihood_matches_brute_force_over_alignments():
    import itertools

    from lipnet_ko.decoding.search import ctc_log_likelihood
    from lipnet_ko.decoding.search import log_softmax

    log_probs = log_softmax(np.random.default_rng(1).normal(size=(4, 3)))
    for ids in ((), (1,), (1, 2), (1, 1), (2, 1, 2)):
        total = 0.0
        for path in itertools.product(range(3), repeat=4):
            collapsed = [k for i, k in enumerate(path) if k != 0 and (i == 0 or path[i - 1] != k)]
            if tuple(collapsed) == ids:
                total += float(np.exp(sum(log_probs[t, k] for t, k in enumerate(path))))
        expected = np.log(total) if total else -np.inf
        assert ctc_log_likelihood(log_probs, ids) == pytest.approx(expected), ids
    assert ctc_log_likelihood(log_probs, (1, 1, 1)) == -np.inf  # needs 5 frames
