"""Decode: logits -> text. numpy only.

- ``search``: greedy and Hangul-constrained CTC prefix beam search (``DecodingOptions``, ``decode``).
- ``lm``: n-gram language models (ARPA read/write, Kneser-Ney training); ``lipnet-ko lm``.
- ``lexicon``: an optional word list the beam search keeps to.
- ``oracle``: perfect-viseme logits and the oracle floor (``oracle_floor``): the best a decoder does from the lips alone.
"""
