"""Video: a file or frames in memory -> mouth crops. The only stage that reads video or runs dlib.

- ``reader``: decoding frames and their timestamps (OpenCV), clear errors for unreadable files.
- ``landmarks``: the only module that imports dlib: frames -> 68-point landmarks, tracked.
- ``mouth``: pure numpy geometry: frames + landmarks -> aligned uint8 crops.
- ``extract``: the one path from video to crops (``extract_mouth_from_video``), with ``PreprocessConfig``.
- ``segmentation``: cutting a long video into utterances by mouth activity.
"""
