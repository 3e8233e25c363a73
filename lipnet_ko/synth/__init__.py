"""Synth: the synthetic Korean speaking-face corpus the default run trains on.

- ``articulation``: jamo -> mouth-shape parameters frame by frame.
- ``face``: a face photograph whose mouth is redrawn from those parameters.
- ``identity``: per-speaker face edits (face geometry, skin tone, stubble, glasses).
- ``corpus``: speakers, splits, sessions and sentences -> labels plus videos or mouth crops; ``lipnet-ko synth``.
"""
