"""Text <-> token ids for CTC: position-specific Hangul jamo for Korean, letters for English (GRID).

Owns the CTC blank (``BLANK_ID = 0``), the token inventories and the policy that turns *any* id
sequence back into well-formed text. Korean tokens are the position-specific conjoining jamo of
``lipnet_ko.text.hangul``. No TensorFlow here.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence
from lipnet_ko.text.hangul import (
    FINALS,
    INITIALS,
    INITIAL_BASE,
    MEDIALS,
    NUM_FINALS,
    NUM_INITIALS,
    NUM_MEDIALS,
    SILENT_INITIAL,
    compose_syllable,
    decompose_syllable,
    is_syllable,
)

BLANK_ID = 0  # CTC blank; Keras' ctc_loss/ctc_decode treat index 0 as the blank
BLANK_TOKEN = "<blank>"
SPACE_TOKEN = " "


@dataclass(frozen=True)
class _Token:
    kind: str  # "blank", "space", "initial", "medial", "final", "char"
    index: int  # index within its kind (jamo index, or position in the char list)


class _BaseTokenizer:
    """Shared id bookkeeping: ``tokens[i]`` is the string of id ``i``; id 0 is the blank."""

    name: str
    tokens: tuple[str, ...]

    def __init__(self, tokens: Sequence[str]):
        if tokens[BLANK_ID] != BLANK_TOKEN:
            raise AssertionError("id 0 must be the CTC blank")
        self.tokens = tuple(tokens)
        self._ids = {tok: i for i, tok in enumerate(self.tokens)}
        self.blank_id = BLANK_ID
        self.space_id = self._ids[SPACE_TOKEN]

    @property
    def vocab_size(self) -> int:
        """Number of output classes, the blank included (the model's last dense layer size)."""
        return len(self.tokens)

    def __len__(self) -> int:
        return self.vocab_size

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _BaseTokenizer) and self.name == other.name and self.tokens == other.tokens

    def __hash__(self) -> int:
        return hash((self.name, self.tokens))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"

    def _token_id(self, text: str, pos: int) -> int:
        """Id of ``text[pos]`` as a token of its own; ValueError naming it when it is none (or the blank)."""
        tid = self._ids.get(text[pos])
        if tid is None or tid == BLANK_ID:
            raise self._unknown(text, pos)
        return tid

    def _unknown(self, text: str, pos: int) -> ValueError:
        ch = text[pos]
        return ValueError(
            f"cannot encode {ch!r} (U+{ord(ch):04X}) at position {pos} of {text!r} with the {self.name} tokenizer; "
            "pass the text through lipnet_ko.text.normalize.normalize_text (or tokenizer.normalize) first"
        )

    def collapse(self, ids: Iterable[int]) -> list[int]:
        """CTC collapse of a frame-level path: merge repeats, then drop blanks."""
        out: list[int] = []
        prev = None
        for i in ids:
            i = int(i)
            if i != prev and i != self.blank_id:
                out.append(i)
            prev = i
        return out

    def to_config(self) -> dict:
        return {"name": self.name, "tokens": list(self.tokens)}

    def save(self, path: str | Path) -> None:
        """Write the tokenizer as JSON (kept beside checkpoints so a model is never paired with another vocabulary)."""
        Path(path).write_text(json.dumps(self.to_config(), ensure_ascii=False, indent=1), encoding="utf-8")


class JamoTokenizer(_BaseTokenizer):
    """Korean text <-> position-specific jamo ids.

    Ids: 0 blank, 1 space, 2..20 initials, 21..41 medials, 42..68 finals (``vocab_size == 69``).

    ``decode`` accepts any id sequence and always returns well-formed text made of complete
    syllables and single spaces (no leading/trailing space). Its policy for ill-formed input:

    * blanks are ignored (``decode`` does not merge repeats; see :meth:`collapse` for CTC paths);
    * an initial followed by another initial, a space or the end of the input (no medial) is dropped;
    * a medial with no pending initial gets the silent initial ㅇ (``ㅏ`` -> ``아``), including a
      medial right after a complete syllable (``가ㅏ`` -> ``가아``);
    * a final with no open syllable (no medial yet, or a final already present) is dropped;
    * runs of spaces fold into one, and spaces at either end are removed.
    """

    name = "jamo"

    def __init__(self) -> None:
        super().__init__((BLANK_TOKEN, SPACE_TOKEN) + INITIALS + MEDIALS + FINALS)
        self.initial_ids = tuple(range(2, 2 + NUM_INITIALS))
        self.medial_ids = tuple(range(self.initial_ids[-1] + 1, self.initial_ids[-1] + 1 + NUM_MEDIALS))
        self.final_ids = tuple(range(self.medial_ids[-1] + 1, self.medial_ids[-1] + 1 + NUM_FINALS))
        self._kinds: list[_Token] = [_Token("blank", 0), _Token("space", 0)]
        self._kinds += [_Token("initial", i) for i in range(NUM_INITIALS)]
        self._kinds += [_Token("medial", i) for i in range(NUM_MEDIALS)]
        self._kinds += [_Token("final", i) for i in range(NUM_FINALS)]

    def kind(self, token_id: int) -> str:
        """"blank", "space", "initial", "medial" or "final"."""
        return self._kinds[token_id].kind

    def normalize(self, text: str, **options) -> str:
        """Label normalisation for this tokenizer: :func:`lipnet_ko.text.normalize.normalize_text`."""
        from lipnet_ko.text.normalize import normalize_text

        return normalize_text(text, **options)

    def encode(self, text: str) -> list[int]:
        """Normalised Korean text (syllables and single spaces) -> ids.

        Conjoining jamo already in NFD form are accepted too. Raises ``ValueError`` naming the first
        character that is neither (Latin, digits, punctuation, compatibility jamo such as ``ㄱ``).
        """
        text = unicodedata.normalize("NFC", text)
        ids: list[int] = []
        for pos, ch in enumerate(text):
            if is_syllable(ch):
                i, m, f = decompose_syllable(ch)
                ids.append(self.initial_ids[i])
                ids.append(self.medial_ids[m])
                if f >= 0:
                    ids.append(self.final_ids[f])
            elif ch == SPACE_TOKEN:
                ids.append(self.space_id)
            else:  # conjoining jamo that NFC left unjoined (orphans), or an error
                ids.append(self._token_id(text, pos))
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> well-formed text, following the policy in the class docstring."""
        out: list[str] = []
        initial = medial = final = -1  # the syllable being built

        def flush() -> None:
            nonlocal initial, medial, final
            if initial >= 0 and medial >= 0:
                out.append(compose_syllable(initial, medial, final))
            initial = medial = final = -1

        for tid in ids:
            tok = self._kinds[int(tid)]
            if tok.kind == "initial":
                flush()
                initial = tok.index
            elif tok.kind == "medial":
                if initial < 0 or medial >= 0:
                    flush()
                    initial = ord(SILENT_INITIAL) - INITIAL_BASE
                medial = tok.index
            elif tok.kind == "final":
                if initial >= 0 and medial >= 0 and final < 0:
                    final = tok.index
            elif tok.kind == "space":
                flush()
                if out and out[-1] != SPACE_TOKEN:
                    out.append(SPACE_TOKEN)
        flush()
        return "".join(out).strip(SPACE_TOKEN)


ASCII_LETTERS = tuple("abcdefghijklmnopqrstuvwxyz")


class CharTokenizer(_BaseTokenizer):
    """English text <-> letter ids, for GRID: 0 blank, 1 space, 2..27 a-z, 28 apostrophe.

    ``encode`` lowercases; ``decode`` ignores blanks, folds spaces and strips the ends.
    """

    name = "char"

    def __init__(self) -> None:
        super().__init__((BLANK_TOKEN, SPACE_TOKEN) + ASCII_LETTERS + ("'",))

    def kind(self, token_id: int) -> str:
        return {BLANK_ID: "blank", self.space_id: "space"}.get(int(token_id), "char")

    def normalize(self, text: str, **options) -> str:
        from lipnet_ko.text.normalize import normalize_english

        return normalize_english(text, **options)

    def encode(self, text: str) -> list[int]:
        text = text.lower()
        return [self._token_id(text, pos) for pos in range(len(text))]

    def decode(self, ids: Iterable[int]) -> str:
        out: list[str] = []
        for tid in ids:
            tid = int(tid)
            if tid == BLANK_ID:
                continue
            tok = self.tokens[tid]
            if tok == SPACE_TOKEN and (not out or out[-1] == SPACE_TOKEN):
                continue
            out.append(tok)
        return "".join(out).strip(SPACE_TOKEN)


TOKENIZERS = {"jamo": JamoTokenizer, "char": CharTokenizer}


def get_tokenizer(name: str) -> JamoTokenizer | CharTokenizer:
    """A tokenizer by name: ``"jamo"`` (Korean) or ``"char"`` (English, GRID)."""
    try:
        return TOKENIZERS[name]()
    except KeyError:
        raise ValueError(f"unknown tokenizer {name!r}; choose from {sorted(TOKENIZERS)}") from None


def load_tokenizer(path: str | Path) -> JamoTokenizer | CharTokenizer:
    """Read a tokenizer JSON written by ``save`` and check its token list matches this version's."""
    config = json.loads(Path(path).read_text(encoding="utf-8"))
    tokenizer = get_tokenizer(config.get("name", ""))
    if list(tokenizer.tokens) != list(config.get("tokens", [])):
        raise ValueError(
            f"{path}: token list differs from the built-in {tokenizer.name!r} tokenizer; "
            "the model was trained with another vocabulary"
        )
    return tokenizer
