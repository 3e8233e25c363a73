"""Speaker identity: how a synthetic speaker's face differs from its photograph, beyond mouth and camera.

Owns the once-per-speaker edits of a :class:`~lipnet_ko.synth.face.Face` before the mouth renderer sees it:
a smooth geometric warp of the face (face width, jaw width, chin length), skin tone, a stubble or beard
shadow on the lower face, and glasses. :func:`sample_identity` draws an :class:`IdentityStyle` from a
random generator; :func:`apply_identity` returns the edited face with its landmarks moved along, so the
renderer (mouth shapes, warp triangulation, lip boxes) works on the new geometry. Pure numpy and OpenCV.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from lipnet_ko.synth.face import Face

JAW = slice(0, 17)  # iBUG jaw outline
CHIN_WEIGHTS = {4: 0.25, 5: 0.5, 6: 0.75, 7: 0.92, 8: 1.0, 9: 0.92, 10: 0.75, 11: 0.5, 12: 0.25}  # share of the chin shift
WARP_SIGMA = 0.22  # Gaussian radius of the displacement field, in face widths (smooth: no visible seams)
GLASSES_RGB = ((25, 25, 28), (70, 45, 30), (150, 150, 155), (120, 20, 30))  # black, brown, metal, red frames


@dataclass(frozen=True)
class IdentityStyle:
    """One speaker's face edits; the identity (1.0, 0.0, no glasses) leaves the photo as it is."""

    face_width: float = 1.0  # horizontal scale of the jaw outline about the face centre
    jaw_width: float = 1.0  # extra scale of the lower jaw (points 3-13): square (>1) or narrow (<1) jaw
    chin: float = 0.0  # chin shift down (+) or up (-), in face widths
    skin_rgb: tuple[float, float, float] = (1.0, 1.0, 1.0)  # gains on the skin inside the face outline
    stubble: float = 0.0  # 0 = none .. 1 = dark beard shadow on the cheeks, chin and upper lip
    glasses: int = -1  # index into GLASSES_RGB; -1 = no glasses
    glasses_size: float = 1.0  # rim size relative to the eye


def sample_identity(rng: np.random.Generator) -> IdentityStyle:
    """A random identity: moderate face geometry changes, skin tones, stubble on about 30%, glasses on about 30%."""
    tone = float(rng.normal(0.0, 0.09))  # darker (-) or lighter (+), applied more to blue than red (warm skin)
    warmth = float(rng.normal(0.0, 0.03))
    skin = (float(np.exp(tone * 0.8 + warmth)), float(np.exp(tone)), float(np.exp(tone * 1.2 - warmth)))
    return IdentityStyle(
        face_width=float(rng.uniform(0.9, 1.1)),
        jaw_width=float(rng.uniform(0.92, 1.08)),
        chin=float(rng.uniform(-0.05, 0.07)),
        skin_rgb=skin,
        stubble=float(rng.uniform(0.3, 1.0)) if rng.random() < 0.3 else 0.0,
        glasses=int(rng.integers(len(GLASSES_RGB))) if rng.random() < 0.3 else -1,
        glasses_size=float(rng.uniform(0.9, 1.15)),
    )


def identity_landmarks(landmarks: np.ndarray, identity: IdentityStyle) -> np.ndarray:
    """float64 [68, 2]: the landmarks after the identity's geometry change (only the jaw outline moves)."""
    points = np.asarray(landmarks, np.float64).copy()
    width = float(np.linalg.norm(points[16] - points[0]))
    centre_x = 0.5 * (points[0, 0] + points[16, 0])
    for index in range(17):
        lower = float(np.clip((index - 2) / 6 if index <= 8 else (14 - index) / 6, 0.0, 1.0))  # 0 at the temples, 1 at the chin
        scale = identity.face_width * (1 + (identity.jaw_width - 1) * lower)
        points[index, 0] = centre_x + (points[index, 0] - centre_x) * scale
    for index, weight in CHIN_WEIGHTS.items():
        points[index, 1] += identity.chin * width * weight
    return points


def _warp(image: np.ndarray, source: np.ndarray, target: np.ndarray, sigma: float) -> np.ndarray:
    """Warp ``image`` so ``source`` points land on ``target``: a Gaussian-RBF backward displacement field."""
    height, width = image.shape[:2]
    border = np.array([(x, y) for x in np.linspace(0, width - 1, 5) for y in (0, height - 1)]
                      + [(x, y) for x in (0, width - 1) for y in np.linspace(0, height - 1, 5)[1:-1]])  # fmt: skip
    centres = np.concatenate([target, border])  # [N, 2], where the output pixels are
    shifts = np.concatenate([source - target, np.zeros_like(border)])  # output px -> source px
    gram = np.exp(-np.sum((centres[:, None] - centres[None]) ** 2, axis=2) / (2 * sigma**2))
    weights = np.linalg.solve(gram + 1e-6 * np.eye(len(centres)), shifts)  # [N, 2]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    grid = np.stack([xx.ravel(), yy.ravel()], axis=1)  # [H*W, 2]
    field = np.exp(-np.sum((grid[:, None] - centres[None].astype(np.float32)) ** 2, axis=2) / np.float32(2 * sigma**2)) @ weights
    map_x = (xx + field[:, 0].reshape(height, width)).astype(np.float32)
    map_y = (yy + field[:, 1].reshape(height, width)).astype(np.float32)
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)


def _soft_mask(shape: tuple[int, int], polygon: np.ndarray, blur: float) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(polygon * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    return cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), max(0.5, blur))


def apply_identity(face: Face, identity: IdentityStyle, seed: int = 0) -> Face:
    """The face edited by ``identity``: geometry warp, skin tone, stubble, glasses.

    Args:
        face: a prepared face (``prepare_face`` / ``mirror_face``).
        identity: the edits.
        seed: seeds the stubble texture (same seed, same pixels).

    Returns:
        A new :class:`Face` of the same size; its landmarks follow the warp.
    """
    points = face.landmarks.astype(np.float64)
    width = float(np.linalg.norm(points[16] - points[0]))
    target = identity_landmarks(points, identity)
    image = face.image
    if not np.allclose(target, points):
        image = _warp(image, points, target, WARP_SIGMA * width)
    out = image.astype(np.float32)
    size = image.shape[:2]
    brows = target[17:27].copy()
    brows[:, 1] -= 0.25 * width  # the forehead above the brows
    outline = np.concatenate([target[JAW], brows[::-1]])
    if identity.skin_rgb != (1.0, 1.0, 1.0):
        skin = _soft_mask(size, cv2.convexHull(outline.astype(np.float32))[:, 0], 0.04 * width)[..., None]
        out *= 1 + skin * (np.array(identity.skin_rgb, np.float32) - 1)
    if identity.stubble > 0:
        lower = np.concatenate([target[2:15], target[[35, 34, 33, 32, 31]] + [0, 0.02 * width]])
        beard = _soft_mask(size, lower, 0.03 * width) * (1 - _soft_mask(size, target[48:60], 0.01 * width))
        texture = np.random.default_rng(seed).random(size, dtype=np.float32)
        texture = cv2.GaussianBlur(texture, (0, 0), 0.5)
        out *= (1 - identity.stubble * 0.35 * beard * (0.55 + 0.9 * texture))[..., None]
    if identity.glasses >= 0:
        colour = GLASSES_RGB[identity.glasses]
        canvas = np.clip(out, 0, 255).astype(np.uint8)
        rims = []
        for eye in (target[36:42], target[42:48]):
            centre = eye.mean(axis=0)
            eye_width = float(np.linalg.norm(eye[3] - eye[0]))
            axes = (0.95 * eye_width * identity.glasses_size, 0.7 * eye_width * identity.glasses_size)
            rims.append((centre, axes))
            cv2.ellipse(canvas, tuple(np.round(centre * 16).astype(int).tolist()),
                        tuple(int(a * 16) for a in axes), 0, 0, 360, colour, 1, cv2.LINE_AA, 4)  # fmt: skip
        (left, (left_x, _)), (right, (right_x, _)) = rims
        bridge = np.array([left + [left_x, 0], right - [right_x, 0]])
        temples = [np.array([left - [left_x, 0], target[0] + [0, -0.02 * width]]),
                   np.array([right + [right_x, 0], target[16] + [0, -0.02 * width]])]  # fmt: skip
        cv2.polylines(canvas, [np.round(line * 16).astype(np.int32) for line in [bridge, *temples]], False, colour, 1,
                      cv2.LINE_AA, 4)  # fmt: skip
        out = canvas.astype(np.float32)
    return Face(image=np.clip(out, 0, 255).astype(np.uint8), landmarks=target.astype(np.float32), name=face.name)
