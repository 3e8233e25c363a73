"""Text: Hangul, tokens, normalisation, scoring. Plain Python and numpy; no TensorFlow, no OpenCV.

- ``hangul``: syllable <-> jamo arithmetic (the Unicode tables; no policy).
- ``normalize``: Korean transcripts as labels and metrics see them (numbers read out, noise tags dropped);
  ``lipnet-ko normalize``.
- ``tokenizer``: text <-> CTC token ids (position-specific jamo, or letters for GRID); owns ``BLANK_ID = 0``.
- ``visemes``: jamo -> mouth shapes and viseme classes (what the video can tell apart).
- ``sentences``: the project's sentence sources (the command grammar, free sentences).
- ``sentence_pool``: the open-vocabulary pool from installed packages (train/val/test, LM text); ``lipnet-ko text build``.
- ``metrics``: syllable/jamo/viseme CER, WER, space-normalised WER, BLEU; ``lipnet-ko score``.
"""
