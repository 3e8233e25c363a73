"""Synth: the synthetic Korean speaking-face corpus the default run trains on.

- ``articulation``: jamo -> mouth-shape parameters frame by frame.
- ``face``: a face photograph whose mouth is redrawn from those parameters.
- ``corpus``: speakers, sessions and sentences -> videos and AIHub-style labels; ``lipnet-ko synth``.
"""
