"""Shared fixtures: where the real GRID sample clips live, and skips when they are absent."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
GRID_DIR = SHARED_DATA / "grid"


@pytest.fixture(scope="session")
def grid_dir() -> Path:
    """Folder of the eight real GRID clips (``../shared/data/grid``); skips the test when it is missing."""
    if not GRID_DIR.is_dir() or not any(GRID_DIR.glob("*.mpg")):
        pytest.skip(f"real GRID clips not found at {GRID_DIR} (../shared/data/grid beside the checkout)")
    return GRID_DIR


@pytest.fixture(scope="session")
def grid_videos(grid_dir: Path) -> list[Path]:
    return sorted(grid_dir.glob("*.mpg"))


GRID_S1_DIR = SHARED_DATA / "grid-s1"


@pytest.fixture(scope="session")
def grid_s1_dir() -> Path:
    """GRID speaker s1 in GRID's own layout (``video/*.mp4`` beside ``align/*.align``); skips when it is missing."""
    if not (GRID_S1_DIR / "video").is_dir() or not (GRID_S1_DIR / "align").is_dir():
        pytest.skip(f"GRID speaker s1 not found at {GRID_S1_DIR} (../shared/data/grid-s1 beside the checkout)")
    return GRID_S1_DIR
