"""Closed-vocabulary constraint for beam search: a word list compiled to a token trie.

The trie is stored as a dense transition table over token ids so that the decoder can mask a whole
beam's extensions with one array lookup. Node 0 is the root (the start of a word); a space is
allowed only at a node that ends a word and leads back to the root. Plain numpy, no TensorFlow.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable

import numpy as np

log = logging.getLogger(__name__)

ROOT = 0  # trie node of "at the start of a word"


class Lexicon:
    """A word list as a trie over a tokenizer's ids.

    Args:
        words: the allowed words (eojeol for Korean, words for GRID); each is encoded with
            ``tokenizer.encode`` and must contain no space. Duplicates are ignored.
        tokenizer: the tokenizer whose ids the decoder searches over.

    Attributes:
        words: the sorted, de-duplicated word list.
        next: ``int32 [num_nodes, vocab_size]``, the node reached by emitting a token, or -1 where the
            token is not allowed (the blank column is always -1).
        accept: ``bool [num_nodes]``, True where a hypothesis may end (the root or a word end).
    """

    def __init__(self, words: Iterable[str], tokenizer) -> None:
        self.tokenizer = tokenizer
        self.words = tuple(sorted({w.strip() for w in words if w.strip()}))
        if not self.words:
            raise ValueError("a lexicon needs at least one word")
        children: list[dict[int, int]] = [{}]
        word_end = [False]
        for word in self.words:
            if " " in word:
                raise ValueError(f"lexicon entry {word!r} contains a space; give one word per entry")
            node = ROOT
            for tid in tokenizer.encode(word):
                child = children[node].get(tid)
                if child is None:
                    child = len(children)
                    children[node][tid] = child
                    children.append({})
                    word_end.append(False)
                node = child
            word_end[node] = True
        self.next = np.full((len(children), tokenizer.vocab_size), -1, dtype=np.int32)
        for node, kids in enumerate(children):
            for tid, child in kids.items():
                self.next[node, tid] = child
            if word_end[node]:
                self.next[node, tokenizer.space_id] = ROOT
        self.accept = np.array(word_end, dtype=bool)
        self.accept[ROOT] = True
        log.debug("lexicon: %d words, %d trie nodes", len(self.words), len(children))

    @classmethod
    def from_file(cls, path: str | Path, tokenizer) -> "Lexicon":
        """Read one word per line (UTF-8); blank lines and lines starting with ``#`` are skipped."""
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        return cls((ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")), tokenizer)

    @property
    def num_nodes(self) -> int:
        return self.next.shape[0]

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        node = ROOT
        for tid in self.tokenizer.encode(word):
            node = self.next[node, tid]
            if node < 0:
                return False
        return node != ROOT and bool(self.accept[node])

    def __repr__(self) -> str:
        return f"Lexicon({len(self.words)} words, {self.num_nodes} nodes)"
