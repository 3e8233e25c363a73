"""Test helpers for tests/app/test_flags.py: a tiny labelled corpus that needs no face detector, and a fake terminal.

``write_box_corpus`` writes the AIHub (OLKAVS) layout: one short video per speaker and camera angle, with a
JSON label that gives two sentences and a lip box for every frame. Clips read from it are cropped from those
boxes, so ``preprocess`` and ``evaluate`` run on it without dlib.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from videos import write_video

BOX_FPS = 25.0
BOX_FRAMES = 40  # 1.6 s
BOX_SIZE = (72, 96)  # frame height, width in px
BOX_SENTENCES = (("안녕 하세요", 0.04, 0.72), ("좋은 아침 이에요", 0.8, 1.52))  # text, start s, end s


def write_box_corpus(root: Path, speakers: tuple[str, ...] = ("C001", "C002", "C003"), extra_angles: str = "B") -> Path:
    """Writes ``root/SPEAKER/lip_J_1_F_30_SPEAKER_ANGLE_001.{mp4,json}``; returns ``root``.

    Every speaker has a frontal (angle A) video; the first speaker also has one per angle of
    ``extra_angles``, which ``data inspect`` and ``scan`` leave out unless asked. The lip box
    (x0, y0, x1, y1) jitters by a few px from frame to frame, so landmark smoothing has something to do.
    """
    height, width = BOX_SIZE
    for index, speaker in enumerate(speakers):
        for angle in "A" + (extra_angles if index == 0 else ""):
            rng = np.random.default_rng([index, ord(angle)])
            texture = rng.integers(0, 256, (height // 4, width // 4, 3), dtype=np.uint8)
            still = np.kron(texture, np.ones((4, 4, 1), np.uint8))  # 4x4 blocks: survive mp4 compression
            frames = np.stack([np.roll(still, t % 4, axis=1) for t in range(BOX_FRAMES)])
            centre = np.array([width / 2, height * 0.6]) + rng.uniform(-3, 3, (BOX_FRAMES, 2))
            half = np.array([20.0, 8.0])
            boxes = np.round(np.hstack([centre - half, centre + half]), 1)
            stem = f"lip_J_1_F_30_{speaker}_{angle}_001"
            folder = root / speaker
            folder.mkdir(parents=True, exist_ok=True)
            write_video(folder / f"{stem}.mp4", frames, BOX_FPS, fourcc="mp4v")
            label = {
                "Video_info": {"video_Name": f"{stem}.mp4", "FPS": BOX_FPS, "Resolution": f"{width}*{height}"},
                "Sentence_info": [{"ID": i, "sentence_text": text, "start_time": start, "end_time": end}
                                  for i, (text, start, end) in enumerate(BOX_SENTENCES, start=1)],  # fmt: skip
                "Bounding_box_info": {"Lip_bounding_box": {"xtl_ytl_xbr_ybr": boxes.tolist()}},
            }
            (folder / f"{stem}.json").write_text(json.dumps([label], ensure_ascii=False), encoding="utf-8")
    return root


class Terminal(io.StringIO):
    """A text stream that says it is a terminal, so tqdm draws its bars into it (it hides them otherwise)."""

    def isatty(self) -> bool:
        return True
