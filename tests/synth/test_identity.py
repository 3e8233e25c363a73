"""Tests for speaker identities: each edit changes the face where it should, and nowhere else it should not."""

from __future__ import annotations

import numpy as np
import pytest

from lipnet_ko.synth.corpus import SynthConfig, sample_speaker
from lipnet_ko.synth.identity import IdentityStyle, apply_identity, identity_landmarks, sample_identity


@pytest.fixture(scope="module")
def face():
    from lipnet_ko.synth.corpus import load_faces

    return load_faces(SynthConfig(held_out_speakers=0))[0][0]


def _eyes_box(points: np.ndarray) -> tuple[slice, slice]:
    lo, hi = points[36:48].min(axis=0).astype(int), points[36:48].max(axis=0).astype(int)
    return slice(lo[1] - 6, hi[1] + 6), slice(lo[0] - 8, hi[0] + 8)


def test_geometry_moves_the_jaw_outline_only():
    points = np.random.default_rng(0).uniform(20, 140, (68, 2))
    points[0], points[16] = (30, 60), (130, 60)
    wide = identity_landmarks(points, IdentityStyle(face_width=1.1))
    assert np.allclose(wide[17:], points[17:])  # brows, eyes, nose, mouth stay
    assert np.linalg.norm(wide[16] - wide[0]) == pytest.approx(1.1 * 100)
    chin = identity_landmarks(points, IdentityStyle(chin=0.05))
    assert chin[8, 1] - points[8, 1] == pytest.approx(5.0) and np.allclose(chin[[0, 1, 2, 3, 13, 14, 15, 16]],
                                                                          points[[0, 1, 2, 3, 13, 14, 15, 16]])  # fmt: skip
    assert np.allclose(identity_landmarks(points, IdentityStyle()), points)


def test_identities_differ_between_speakers_and_cover_every_edit():
    config = SynthConfig()
    identities = [sample_speaker(i, 0, range(2), 160).identity for i in range(1, config.speakers + config.held_out_speakers + 1)]
    assert len(set(identities)) == len(identities)
    glasses = np.mean([i.glasses >= 0 for i in identities])
    stubble = np.mean([i.stubble > 0 for i in identities])
    assert 0.15 < glasses < 0.45 and 0.15 < stubble < 0.45
    widths = [i.face_width for i in identities]
    assert max(widths) - min(widths) > 0.12
    assert sample_identity(np.random.default_rng(5)) == sample_identity(np.random.default_rng(5))


@pytest.mark.dlib
def test_plain_identity_keeps_the_photo(face):
    same = apply_identity(face, IdentityStyle())
    assert np.array_equal(same.image, face.image) and np.allclose(same.landmarks, face.landmarks)


@pytest.mark.dlib
def test_each_edit_changes_its_region(face):
    points = face.landmarks
    wide = apply_identity(face, IdentityStyle(face_width=1.1, chin=0.06))
    assert np.abs(wide.image.astype(int) - face.image).max() > 40  # the jaw outline moved in the pixels too
    assert wide.landmarks[8, 1] > points[8, 1] + 4
    eyes = _eyes_box(points)
    glasses = apply_identity(face, IdentityStyle(glasses=0))
    assert np.abs(glasses.image[eyes].astype(int) - face.image[eyes]).max() > 60
    chin = (slice(int(points[57, 1]) + 3, int(points[8, 1]) - 2), slice(int(points[6, 0]) + 2, int(points[10, 0]) - 2))
    beard = apply_identity(face, IdentityStyle(stubble=1.0))
    assert beard.image[chin].mean() < 0.85 * face.image[chin].mean()
    assert np.array_equal(beard.image[eyes], face.image[eyes])  # stubble stays on the lower face
    tone = apply_identity(face, IdentityStyle(skin_rgb=(0.8, 0.8, 0.8)))
    assert tone.image[chin].mean() < 0.85 * face.image[chin].mean()
    assert np.array_equal(tone.image[:8, :8], face.image[:8, :8])  # the background corner keeps its colour
    again = apply_identity(face, IdentityStyle(stubble=1.0), seed=0)
    assert np.array_equal(again.image, beard.image)  # same seed, same stubble texture
