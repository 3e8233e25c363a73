"""App: what people run. Thin over the library.

- ``cli``: the ``lipnet-ko`` dispatcher; each subcommand lives in the module of its stage.
- ``transcribe``: a silent video -> timed Korean text (``transcribe``); ``lipnet-ko transcribe``.
- ``subtitles``: SRT / VTT / TXT / JSON writers and burned-in subtitles.
- ``evaluate``: ``lipnet-ko evaluate``: a model on a corpus -> figures and report.
- ``report``: evaluation reports (JSON, Markdown, confusion heatmaps).
"""
