"""CTC decoding: logits -> text. Greedy decoding and a prefix beam search that keeps every hypothesis
well-formed Hangul, with optional n-gram LM shallow fusion and a lexicon. Plain numpy: no
TensorFlow is needed at decode time.

The beam search is the CTC prefix search (Graves 2012, section 7.5; Hannun et al. 2014,
arXiv:1408.2873) vectorised per frame:

* Before extending, the mass that a beam prefix ``l`` sends to a child ``l + c`` that is itself already
  in the beam is merged into that child. Every remaining extension is then a new prefix with exactly
  one parent, so keeping the ``beam_width`` best of "stay" and "extend" candidates is exact pruning
  (no candidate is scored with only part of its mass).
* All beam x token extensions of a frame are scored as one matrix: acoustic mass + the fusion row of
  each hypothesis's LM state + the masks of its automaton and lexicon states, all gathered by state id.
* Prefixes are integer ids in a trie that lives for one utterance; the beam carries each prefix's
  joint state (automaton, lexicon, LM) and accumulated fusion score, and updates them with one table
  lookup per kept candidate.
* "Stay" (the prefix carried over unchanged) is one more column of the score matrix, a pseudo-token whose
  table entries keep the state and add nothing, so stays and extensions are selected and updated together.

Scores are natural logs: ``log P_ctc(prefix) + lm_weight * log P_lm(prefix) + insertion_bonus * len``.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np

from lipnet_ko.text.tokenizer import BLANK_ID, JamoTokenizer

if TYPE_CHECKING:  # imported for annotations only; decoding never needs them at import time
    from lipnet_ko.decoding.lexicon import Lexicon
    from lipnet_ko.decoding.lm import NGramLM

log = logging.getLogger(__name__)

NEG_INF = -np.inf


@dataclass(frozen=True)
class DecodingOptions:
    """How :func:`decode` turns logits into text. ``DecodingOptions()`` is a Hangul-constrained beam search."""

    beam_width: int = 32  # hypotheses kept per frame; 1 = greedy (argmax, merge repeats, drop blanks)
    hangul_constraint: bool = True  # keep every hypothesis well-formed (Hangul syllables for jamo; no stray spaces for chars)
    lm: "NGramLM | None" = None  # token-level n-gram LM for shallow fusion (lipnet_ko.decoding.lm); None = acoustic only
    lm_weight: float = 0.8  # alpha: multiplies the LM's natural-log probability
    # beta: added per emitted token with an LM (offsets its pull toward short outputs); unused without one
    insertion_bonus: float = 0.5
    lexicon: "Lexicon | None" = None  # closed vocabulary (lipnet_ko.decoding.lexicon.Lexicon); None = open vocabulary
    token_min_logprob: float = -8.0  # a token is tried as an extension only on frames where its log-prob is at least this
    beam_threshold: float = 25.0  # hypotheses scoring more than this below the frame's best are dropped
    nbest: int = 1  # (text, score) pairs returned per utterance, best first


@dataclass(frozen=True)
class DecodingResult:
    """One utterance's decoding: the best text, its score, and the n-best list."""

    text: str  # best hypothesis, well-formed text (tokenizer.decode of ``ids``)
    score: float  # its total score (natural log; see the module docstring)
    nbest: list[tuple[str, float]] = field(default_factory=list)  # up to options.nbest (text, score), best first
    ids: tuple[int, ...] = ()  # token ids of the best hypothesis (blanks and repeats already removed)
    nbest_ids: list[tuple[int, ...]] = field(default_factory=list)  # token ids of each n-best entry


def _verify_options(options: DecodingOptions, tokenizer) -> None:
    if options.beam_width < 1:
        raise ValueError(f"beam_width must be at least 1, got {options.beam_width}")
    if options.nbest < 1:
        raise ValueError(f"nbest must be at least 1, got {options.nbest}")
    if options.nbest > options.beam_width:
        raise ValueError(f"nbest={options.nbest} cannot exceed beam_width={options.beam_width}")
    if options.beam_width == 1 and options.lm is not None:
        raise ValueError("lm requires beam_width > 1 (beam_width=1 is greedy decoding, which ignores the LM)")
    if options.beam_width == 1 and options.lexicon is not None:
        raise ValueError("lexicon requires beam_width > 1 (beam_width=1 is greedy decoding)")
    if options.lm_weight < 0:
        raise ValueError(f"lm_weight must be >= 0, got {options.lm_weight}")
    if options.beam_threshold <= 0:
        raise ValueError(f"beam_threshold must be > 0, got {options.beam_threshold}")
    if options.lexicon is not None and options.lexicon.tokenizer != tokenizer:
        raise ValueError(
            f"lexicon was compiled for the {options.lexicon.tokenizer.name!r} tokenizer, "
            f"but decoding uses {tokenizer.name!r}"
        )
    if options.lm is not None:
        options.lm.check_tokenizer(tokenizer)  # raises ValueError naming the mismatch


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities over the last axis, float64 (a no-op up to rounding on log-probabilities)."""
    x = np.asarray(logits, dtype=np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


# ---------------------------------------------------------------------------------------------
# Automata: which token may follow which, as dense tables over automaton states x token ids.


@dataclass(frozen=True)
class Automaton:
    """A deterministic automaton over token ids.

    ``next[s, tid]`` is the state after emitting ``tid`` from state ``s`` or -1 where that is not
    allowed; ``accept[s]`` says whether a hypothesis may end in ``s``; ``start`` is the empty prefix.
    """

    names: tuple[str, ...]  # state names, for messages and tests
    next: np.ndarray  # int32 [num_states, vocab_size]
    accept: np.ndarray  # bool [num_states]
    start: int = 0


def hangul_automaton(tokenizer: JamoTokenizer) -> Automaton:
    """Syllable structure over jamo ids: initial, medial, optional final, then a space or the next initial.

    Compound vowels (ㅘ) and double finals (ㄳ) are single tokens in :class:`JamoTokenizer`, and a
    vowel-initial syllable starts with the silent initial ㅇ like any other, so these five states cover
    them. A hypothesis may end after a medial or a final (or be empty), never after an initial or a space.
    Two equal ids are never adjacent in a well-formed sequence, so CTC's "repeat needs a blank" case never
    arises under this automaton.
    """
    names = ("start", "space", "initial", "medial", "final")
    start, space, initial, medial, final = range(5)
    nxt = np.full((5, tokenizer.vocab_size), -1, dtype=np.int32)
    ini, med, fin = list(tokenizer.initial_ids), list(tokenizer.medial_ids), list(tokenizer.final_ids)
    for s in (start, space):
        nxt[s, ini] = initial
    nxt[initial, med] = medial
    for s in (medial, final):
        nxt[s, ini] = initial
        nxt[s, tokenizer.space_id] = space
    nxt[medial, fin] = final
    accept = np.array([True, False, False, True, True])
    return Automaton(names, nxt, accept, start)


def spacing_automaton(tokenizer) -> Automaton:
    """For letter tokenizers (GRID English): no leading, trailing or double spaces."""
    names = ("start", "space", "char")
    nxt = np.full((3, tokenizer.vocab_size), -1, dtype=np.int32)
    chars = [i for i in range(tokenizer.vocab_size) if i not in (BLANK_ID, tokenizer.space_id)]
    nxt[:, chars] = 2
    nxt[2, tokenizer.space_id] = 1
    return Automaton(names, nxt, np.array([True, False, True]), 0)


def free_automaton(tokenizer) -> Automaton:
    """One state, every non-blank token allowed: the plain, unconstrained CTC prefix search."""
    nxt = np.zeros((1, tokenizer.vocab_size), dtype=np.int32)
    nxt[0, BLANK_ID] = -1
    return Automaton(("any",), nxt, np.array([True]), 0)


# ---------------------------------------------------------------------------------------------
# The search space: automaton, lexicon and LM tables, combined once per (tokenizer, options).


class _SearchSpace:
    """The product of the automaton, the lexicon trie and the LM as one state machine over token ids.

    Each joint state (automaton state, lexicon node, LM state) reachable from the start gets an id, a
    row of fusion scores and a row of successors, so the beam search does one gather per frame:

    * ``rows[j, tid]``: ``lm_weight * ln P_lm(tid | j) + insertion_bonus``, or -inf where ``tid`` is not allowed;
    * ``next[j, tid]``: the joint state after ``tid``, -1 where not allowed;
    * ``end[j]``: ``lm_weight * ln P_lm(</s> | j)`` where ``j`` may end a hypothesis, -inf elsewhere.

    Column ``vocab_size`` is the beam search's "stay" pseudo-token (a prefix carried to the next frame
    unchanged): ``next[j, vocab_size] = j`` and ``rows[j, vocab_size] = 0``, so stays and extensions share
    one lookup. It is also the "last token" of the empty prefix.
    Built once per (tokenizer, constraint, lexicon, LM, weights) and cached; the LM's own tables are
    built when the LM is loaded.
    """

    def __init__(self, tokenizer, constrained: bool, lexicon, lm, lm_weight: float, insertion_bonus: float):
        v = tokenizer.vocab_size
        self.vocab_size = v
        self.constrained = constrained
        if not constrained:
            fsa = free_automaton(tokenizer)
        elif isinstance(tokenizer, JamoTokenizer):
            fsa = hangul_automaton(tokenizer)
        else:
            fsa = spacing_automaton(tokenizer)
        # Components as (next [n, V+1] with -1 = not allowed, start, accept [n]).
        comps = [(_pad_col(fsa.next, -1), fsa.start, fsa.accept)]
        if lexicon is not None:
            comps.append((_pad_col(lexicon.next, -1), 0, lexicon.accept))
        if lm is not None:
            table = lm.token_table(tokenizer)
            lm_rows = lm_weight * table.rows + insertion_bonus
            lm_next, lm_start, lm_end = table.next, table.start, lm_weight * table.end
        else:
            lm_rows = np.full((1, v), float(insertion_bonus))
            lm_next, lm_start, lm_end = np.zeros((1, v), dtype=np.int32), 0, np.zeros(1)
        comps.append((_pad_col(lm_next, 0), lm_start, np.ones(len(lm_end), dtype=bool)))

        radix = [c[0].shape[0] for c in comps]

        def encode(parts):
            key = np.zeros(np.shape(parts[0]), dtype=np.int64)
            for part, r in zip(parts, radix):
                key = key * r + part
            return key

        def decode_key(key):
            parts = []
            for r in reversed(radix):
                key, part = np.divmod(key, r)
                parts.append(part)
            return parts[::-1]

        def successors(keys):
            parts = decode_key(keys)
            nxt = [c[0][p] for c, p in zip(comps, parts)]  # each [n, V+1]
            ok = np.logical_and.reduce([n >= 0 for n in nxt])
            return encode([np.maximum(n, 0) for n in nxt]), ok, parts

        start_key = encode([np.int64(c[1]) for c in comps])
        known = np.array([start_key], dtype=np.int64)
        frontier = known
        while frontier.size:
            nk, ok, _ = successors(frontier)
            found = np.unique(nk[ok])
            frontier = found[~np.isin(found, known, assume_unique=True)]
            known = np.union1d(known, frontier)
        nk, ok, parts = successors(known)
        self.next = np.where(ok, np.searchsorted(known, nk), -1).astype(np.int64)
        self.start = int(np.searchsorted(known, start_key))
        lm_part = parts[-1]
        rows = np.full((known.size, v + 1), NEG_INF)
        rows[:, :v] = lm_rows[lm_part]
        self.rows = np.where(ok, rows, NEG_INF)
        self.next[:, v] = np.arange(known.size)  # the "stay" column: same state, no fusion score
        self.rows[:, v] = 0.0
        accept = np.logical_and.reduce([c[2][p] for c, p in zip(comps, parts)])
        self.end = np.where(accept, lm_end[lm_part], NEG_INF)
        log.debug("search space: %d joint states (automaton %s, lexicon %s, LM %s)", known.size, *radix[:1],
                  radix[1] if lexicon is not None else "-", radix[-1])


def _pad_col(table: np.ndarray, value) -> np.ndarray:
    out = np.empty((table.shape[0], table.shape[1] + 1), dtype=table.dtype)
    out[:, :-1] = table
    out[:, -1] = value
    return out


@functools.lru_cache(maxsize=16)
def _search_space(tokenizer, constrained, lexicon, lm, lm_weight, insertion_bonus) -> _SearchSpace:
    return _SearchSpace(tokenizer, constrained, lexicon, lm, lm_weight, insertion_bonus)


# ---------------------------------------------------------------------------------------------
# Decoders for one utterance.


def greedy_search(log_probs: np.ndarray, tokenizer) -> DecodingResult:
    """Best path: argmax per frame, merge repeats, drop blanks.

    Args:
        log_probs: ``float [T, V]`` log-probabilities (or logits: the argmax is the same) of one utterance.
        tokenizer: maps the collapsed ids to text with its ``decode`` policy.

    Returns:
        A :class:`DecodingResult` whose score is the sum of the frame maxima (the best path's
        log-probability when ``log_probs`` are normalised).
    """
    log_probs = np.asarray(log_probs)
    if log_probs.shape[0] == 0:
        return DecodingResult("", 0.0, [("", 0.0)], (), [()])
    path = log_probs.argmax(axis=-1)
    score = float(log_probs[np.arange(len(path)), path].sum())
    ids = tuple(tokenizer.collapse(path.tolist()))
    text = tokenizer.decode(ids)
    return DecodingResult(text, score, [(text, score)], ids, [ids])


def beam_search(log_probs: np.ndarray, tokenizer, options: DecodingOptions = DecodingOptions()) -> DecodingResult:
    """Constrained CTC prefix beam search over one utterance.

    Args:
        log_probs: ``float [T, V]`` log-probabilities (log-softmax of the logits), blank at id 0.
        tokenizer: the tokenizer the model was trained with (its ids index ``V``).
        options: beam width, constraints, LM fusion and pruning; see :class:`DecodingOptions`.

    Returns:
        A :class:`DecodingResult` with the best hypothesis and the ``options.nbest`` best, all of which end
        in an accepting state of the automaton and lexicon (so they recompose to whole syllables/words).
    """
    with_lm = options.lm is not None
    space = _search_space(
        tokenizer, bool(options.hangul_constraint), options.lexicon, options.lm,
        float(options.lm_weight) if with_lm else 0.0, float(options.insertion_bonus) if with_lm else 0.0,
    )
    return _prefix_search(np.asarray(log_probs, dtype=np.float64), tokenizer, space, options)


# Scores below this are impossible: the selection bound never drops under it, so a hypothesis of
# probability zero is never kept (it could only fill a beam slot).
_LOWEST_SCORE = -np.finfo(np.float64).max
_BUFFERS = threading.local()  # per-thread scratch: the (parent, token) -> child table, reused across calls


def _child_table(size: int) -> np.ndarray:
    """A flat ``int64`` table of at least ``size`` entries, all -1 (callers reset what they set)."""
    table = getattr(_BUFFERS, "child", None)
    if table is None or table.size < size:
        table = np.full(size, -1, dtype=np.int64)
        _BUFFERS.child = table
    return table


def _frame_plans(logp: np.ndarray, min_logprob: float) -> list:
    """The columns of each frame's score matrix (beam x candidates), or None for a frame with no token to try.

    A plan is ``(tokens, y, col_of)``. The last column is always the "stay" column (the prefix carried
    over unchanged, token id ``V`` in the search tables); the others are the tokens tried on that frame.
    A frame where many tokens pass ``min_logprob`` uses every id as a column (``tokens`` is None: column =
    token id), with the untried ones at -inf: cheaper than gathering a column subset. Otherwise
    ``tokens`` lists the tried ids and then ``V``. ``y`` [columns] holds the log-probs (-inf in the stay
    column and untried columns) and ``col_of`` [V + 1] maps a token id to its column, untried ids to the
    stay column (so masking an untried extension is a harmless write there, before the stays are).
    """
    t_len, v = logp.shape
    stride = v + 1
    tried = np.zeros((t_len, stride), dtype=bool)
    tried[:, :v] = logp >= min_logprob
    tried[:, BLANK_ID] = False
    counts = tried.sum(axis=1)
    y_all = np.full((t_len, stride), NEG_INF)
    np.copyto(y_all[:, :v], logp, where=tried[:, :v])
    tried[:, v] = True  # the stay column closes every narrow frame's token list
    col_of = np.where(tried, tried.cumsum(axis=1) - 1, counts[:, None])
    toks = tried.nonzero()[1]  # per frame: its tried ids, then V
    ends = np.cumsum(counts + 1)
    identity = np.arange(stride)
    wide = max(8, v // 4)
    plans: list = []
    for t, (count, end) in enumerate(zip(counts.tolist(), ends.tolist())):
        if count == 0:
            plans.append(None)
        elif count >= wide:
            plans.append((None, y_all[t], identity))
        else:
            cols = toks[end - count - 1 : end]
            plans.append((cols, y_all[t, cols], col_of[t]))
    return plans


def _prefix_search(logp: np.ndarray, tokenizer, sp: _SearchSpace, options: DecodingOptions) -> DecodingResult:
    t_len, v = logp.shape
    if v != sp.vocab_size:
        raise ValueError(f"logits have {v} classes but the {tokenizer.name!r} tokenizer has {sp.vocab_size}")
    if t_len == 0:
        return DecodingResult("", 0.0, [("", 0.0)], (), [()])
    width = options.beam_width
    threshold = float(options.beam_threshold)
    repeats = not sp.constrained  # under the automaton two equal tokens are never adjacent
    rows, jnext = sp.rows, sp.next
    rows_flat, jnext_flat = rows.ravel(), jnext.ravel()  # indexed by state * stride + token
    stride = v + 1  # id v: the "stay" pseudo-token of the search tables, and the root's "last token"
    plans = _frame_plans(logp, options.token_min_logprob)
    yext = np.full((t_len, stride), NEG_INF)  # log-probs, -inf for the root's "last token"
    yext[:, :v] = logp

    # Prefix trie for this utterance: parent and last token per node id; children in a shared flat table
    # indexed by parent * stride + token. It gives each prefix a single id, so that a prefix that drops
    # out of the beam and comes back is recognised (and merged with) as the same one.
    cap = t_len * width + 2
    parent = np.zeros(cap, dtype=np.int64)
    token = np.full(cap, v, dtype=np.int64)
    slot = np.full(cap, -1, dtype=np.int64)  # node -> its position in the current beam, -1 when absent
    parent[0] = cap - 1  # the root's parent is a dummy node that is never in the beam
    n_nodes = 1
    positions = np.arange(cap)
    child = _child_table(cap * stride)

    # The beam: parallel arrays, one entry per hypothesis (prefix).
    nodes = np.zeros(1, dtype=np.int64)  # trie node
    up = parent[:1].copy()  # its parent's node
    last = token[:1].copy()  # its last token
    state = np.full(1, sp.start, dtype=np.int64)  # joint automaton/lexicon/LM state after the prefix
    ctx = np.zeros(1)  # accumulated fusion score (LM + insertion bonus) of the prefix
    pb = np.zeros(1)  # log P(prefix, ending in a blank)
    pnb = np.full(1, NEG_INF)  # log P(prefix, ending in its last token)
    # Scratch reused across frames: the score matrix (at most beam x (V + 1)) and a row of -inf.
    score_buf = np.empty(width * stride)
    neg_inf = np.full(width, NEG_INF)
    cells: dict[int, tuple] = {}  # n_cols -> (row, column) of each flat matrix index; a gather beats divmod
    try:
        for t in range(t_len):
            y = yext[t]
            ptot = np.logaddexp(pb, pnb)
            new_pb = ptot + y[BLANK_ID]
            y_last = y[last]
            new_pnb = pnb + y_last
            plan = plans[t]
            if plan is None:
                pb, pnb = new_pb, new_pnb
                continue
            toks, y_cols, col_of = plan
            k_beam, n_cols = nodes.size, y_cols.size
            stay_col = n_cols - 1
            # Scores [K, columns]: extension = acoustic mass + fusion row (-inf where a token is not allowed).
            # The stay column is -inf here (y is) and receives the stays once they are final. Written into
            # a buffer reused across frames, adding in the same order as before (bit-identical scores).
            scores = score_buf[: k_beam * n_cols].reshape(k_beam, n_cols)
            np.add((ptot + ctx)[:, None], y_cols, out=scores)
            if repeats:  # a repeat of the last token extends only the paths that end in a blank
                rep_cols = col_of[last]
                rep = (rep_cols != stay_col).nonzero()[0]
                if rep.size:
                    rep_cols = rep_cols[rep]
                    scores[rep, rep_cols] = (pb[rep] + ctx[rep]) + y_cols[rep_cols]
            scores += rows.take(state, axis=0) if toks is None else rows[state[:, None], toks]
            # Merge the mass sent to prefixes that are already in the beam into them.
            slot[nodes] = positions[:k_beam]
            pslot = slot[up]
            slot[nodes] = -1
            merge = (pslot >= 0).nonzero()[0]
            if merge.size:
                pk = pslot[merge]
                mc = last[merge]
                base = np.where(mc == last[pk], pb[pk], ptot[pk]) if repeats else ptot[pk]
                new_pnb[merge] = np.logaddexp(new_pnb[merge], base + y_last[merge])
                scores[pk, col_of[mc]] = NEG_INF
            stay = np.logaddexp(new_pb, new_pnb) + ctx

            # Keep the `width` best of the stays and the extensions, and none below best - threshold.
            # Every extension left is a new prefix with a single parent, so this pruning is exact.
            # With a full beam the stays are `width` distinct candidates, so the worst of them bounds the
            # width-th best of all from below: filtering by it first leaves a short list to partition,
            # free of the many -inf ties of masked tokens (which make introselect slow), and holding the
            # best. A partial beam keeps every candidate of nonzero probability through this filter.
            scores[:, stay_col] = stay
            flat = scores.ravel()
            bound = max(stay.min(), _LOWEST_SCORE) if k_beam == width else _LOWEST_SCORE
            keep = (flat >= bound).nonzero()[0]
            if keep.size == 0:  # every candidate has probability zero
                nodes, state, ctx, pb, pnb = nodes[:0], state[:0], ctx[:0], pb[:0], pnb[:0]
                break
            kept = flat[keep]
            cut = kept.max() - threshold
            if cut > bound:
                inside = (kept >= cut).nonzero()[0]
                keep, kept = keep[inside], kept[inside]
            if keep.size > width:
                keep = keep[kept.argpartition(keep.size - width)[keep.size - width :]]

            # The kept candidates become the new beam. A stay keeps its node (the stay token's table
            # entries keep the state and add no fusion score); an extension looks its child up in the
            # trie, or creates it.
            if n_cols not in cells:
                cells[n_cols] = np.divmod(np.arange(width * n_cols), n_cols)
            cell_row, cell_col = cells[n_cols]
            src, col = cell_row[keep], cell_col[keep]
            tok = col if toks is None else toks[col]
            stayed = (col == stay_col).nonzero()[0]
            par = nodes[src]
            keys = par * stride + tok
            new_nodes = child[keys]
            new_nodes[stayed] = par[stayed]
            fresh = (new_nodes < 0).nonzero()[0]
            if fresh.size:
                ids = positions[n_nodes : n_nodes + fresh.size]
                n_nodes += fresh.size
                new_nodes[fresh] = ids
                child[keys[fresh]] = ids
                parent[ids] = par[fresh]
                token[ids] = tok[fresh]
            step = state[src] * stride + tok
            state = jnext_flat[step]
            ctx = ctx[src] + rows_flat[step]
            base = np.where(tok == last[src], pb[src], ptot[src]) if repeats else ptot[src]
            stayed_src = src[stayed]
            pb = neg_inf[: keep.size].copy()
            pb[stayed] = new_pb[stayed_src]
            pnb = base + y_cols[col]
            pnb[stayed] = new_pnb[stayed_src]
            nodes = new_nodes
            up = parent[nodes]
            last = token[nodes]
    finally:
        child[parent[1:n_nodes] * stride + token[1:n_nodes]] = -1

    final = np.logaddexp(pb, pnb) + ctx + sp.end[state]  # -inf where a prefix may not end
    order = np.argsort(-final, kind="stable")
    accepted = [i for i in order.tolist() if final[i] > NEG_INF]
    if not accepted:
        return _fallback(logp, tokenizer, sp, nodes, np.logaddexp(pb, pnb) + ctx, parent, token)
    nbest: list[tuple[str, float]] = []
    nbest_ids: list[tuple[int, ...]] = []
    for i in accepted[: options.nbest]:
        ids = _backtrack(int(nodes[i]), parent, token)
        nbest_ids.append(ids)
        nbest.append((tokenizer.decode(ids), float(final[i])))
    return DecodingResult(nbest[0][0], nbest[0][1], nbest, nbest_ids[0], nbest_ids)


def _fallback(logp, tokenizer, sp, nodes, scores, parent, token) -> DecodingResult:
    """No hypothesis in the beam may end (e.g. every one stops after an initial). Return the best one cut
    back to its longest prefix that may end, scored exactly: CTC forward pass + its fusion score."""
    if nodes.size == 0:
        return DecodingResult("", NEG_INF, [], (), [])
    ids = _backtrack(int(nodes[int(np.argmax(scores))]), parent, token)
    # Replay the prefix through the tables, accumulating its fusion score in the search's order.
    states, ctxs = [sp.start], [np.float64(0.0)]
    for tid in ids:
        ctxs.append(ctxs[-1] + sp.rows[states[-1], tid])
        states.append(int(sp.next[states[-1], tid]))
    n = len(ids)
    while n > 0 and sp.end[states[n]] == NEG_INF:
        n -= 1
    ids = ids[:n]
    score = float(ctc_log_likelihood(logp, ids) + ctxs[n] + sp.end[states[n]])
    log.debug("no hypothesis may end after the last frame; cut the best back to %d tokens", len(ids))
    text = tokenizer.decode(ids)
    return DecodingResult(text, score, [(text, score)], ids, [ids])


def ctc_log_likelihood(logp: np.ndarray, ids: Sequence[int]) -> float:
    """``log P(ids | logp)`` summed over every CTC alignment (the forward algorithm, Graves et al. 2006).

    Args:
        logp: float [T, V] log-softmax of one utterance's logits, blank at id 0.
        ids: the token ids of a text (blanks and repeats already removed).

    Returns:
        A natural log, -inf when the text cannot be aligned to T frames.
    """
    if len(logp) == 0:
        return 0.0 if len(ids) == 0 else float(NEG_INF)
    ext = np.zeros(2 * len(ids) + 1, dtype=np.int64)
    ext[1::2] = ids
    skip = np.zeros(ext.size, dtype=bool)
    skip[3::2] = ext[3::2] != ext[1:-2:2]  # a label may skip the blank before it unless it repeats
    alpha = np.full(ext.size, NEG_INF)
    alpha[:2] = logp[0, ext[:2]]
    for t in range(1, logp.shape[0]):
        prev = alpha
        alpha = prev.copy()
        alpha[1:] = np.logaddexp(alpha[1:], prev[:-1])
        alpha[2:] = np.where(skip[2:], np.logaddexp(alpha[2:], prev[:-2]), alpha[2:])
        alpha = alpha + logp[t, ext]
    return float(np.logaddexp.reduce(alpha[-2:])) if ext.size > 1 else float(alpha[0])


def _backtrack(node: int, parent: np.ndarray, token: np.ndarray) -> tuple[int, ...]:
    ids = []
    while node != 0:
        ids.append(int(token[node]))
        node = int(parent[node])
    return tuple(reversed(ids))


# ---------------------------------------------------------------------------------------------
# Batch entry point.


def decode(
    logits: np.ndarray,
    logit_lengths: Sequence[int] | np.ndarray | None,
    tokenizer,
    options: DecodingOptions = DecodingOptions(),
) -> list[DecodingResult]:
    """Decode a batch of CTC outputs.

    Args:
        logits: ``float [B, T, V]`` unnormalised logits (or log-probabilities), blank at id 0; a numpy
            array or anything ``np.asarray`` accepts (e.g. a TensorFlow tensor).
        logit_lengths: ``int [B]`` number of valid frames per utterance; None = all ``T`` frames.
        tokenizer: the tokenizer the model was trained with.
        options: see :class:`DecodingOptions`; ``beam_width=1`` is greedy decoding.

    Returns:
        One :class:`DecodingResult` per utterance, in batch order.
    """
    _verify_options(options, tokenizer)
    logits = np.asarray(logits)
    if logits.ndim != 3:
        raise ValueError(f"logits must be [batch, time, vocab], got shape {logits.shape}")
    b, t, v = logits.shape
    if v != tokenizer.vocab_size:
        raise ValueError(f"logits have {v} classes but the {tokenizer.name!r} tokenizer has {tokenizer.vocab_size}")
    lengths = np.full(b, t) if logit_lengths is None else np.asarray(logit_lengths).reshape(-1)
    if lengths.shape[0] != b or (lengths < 0).any() or (lengths > t).any():
        raise ValueError(f"logit_lengths must be {b} values in [0, {t}], got {lengths.tolist()}")
    results = []
    for i in range(b):
        log_probs = log_softmax(logits[i, : int(lengths[i])])
        if options.beam_width == 1:
            results.append(greedy_search(log_probs, tokenizer))
        else:
            results.append(beam_search(log_probs, tokenizer, options))
    return results
