"""Face rendering: a face photograph + mouth parameters -> a video frame of that face talking.

Owns the pixels of the synthetic corpus. A :class:`Face` is a photograph cropped to the frame with
its 68 landmarks (found once by ``lipnet_ko.video.landmarks``; nothing here imports dlib). A
:class:`FaceRenderer` moves the 20 mouth landmarks (48-67) to a parametric mouth built from the six
:class:`~lipnet_ko.text.visemes.MouthShape` fields (jaw opening lowers the lower lip and the chin points
5-11, lip width moves the corners, protrusion narrows and rounds the lips, closure brings the inner
lips together), warps the lower face of the photo onto them with a piecewise-affine warp (one affine
map per triangle of a fixed triangulation, applied with one ``cv2.remap`` over the lower face), and
paints the inside of the mouth (dark cavity, upper and lower teeth, tongue) inside the inner-lip
polygon, anti-aliased by drawing at 3x and averaging down. The lips themselves are the photo's lips,
stretched, so the result keeps the photo's texture instead of a pasted shape.

:func:`apply_camera` then applies what differs per recording: head pose (a similarity transform of
the whole frame), white balance, contrast and gamma, blur, sensor noise and JPEG compression.
Coordinates are (x, y) pixels; images are RGB uint8.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay

from lipnet_ko.text.visemes import MOUTH_SHAPES, REST_SHAPE

NUM_LANDMARKS = 68
MOUTH = slice(48, 68)  # outer lip 48-59, inner lip 60-67
OUTER_LIP = slice(48, 60)
INNER_LIP = slice(60, 68)
JAW_WEIGHTS = {5: 0.3, 6: 0.6, 7: 0.85, 8: 1.0, 9: 0.85, 10: 0.6, 11: 0.3}  # how far each chin point follows the jaw
ANCHORS = (2, 3, 4, 12, 13, 14, 31, 32, 33, 34, 35)  # landmarks that bound the warp and never move
SUPERSAMPLE = 3  # the mouth interior is drawn at this scale, then averaged down (anti-aliasing)

# Mouth geometry, in units of the speaker's rest mouth width (corner to corner).
MAX_GAP = 0.55  # inner lip gap at jaw_open = 1 (ㅏ)
UPPER_SHARE = 0.3  # share of the gap taken by the upper lip rising; the jaw carries the lower lip the rest
UPPER_LIP = 0.12  # upper lip height at the middle
LOWER_LIP = 0.16  # lower lip height at the middle
# Horizontal positions of the lip landmarks as shares of the half width: dlib's 49/53 and 50/52 (the
# peaks of the cupid's bow), 55/59 and 56/58 below, 61/63 and 65/67 inside.
OUTER_X = (-1.0, -0.62, -0.28, 0.0, 0.28, 0.62, 1.0, 0.62, 0.28, 0.0, -0.28, -0.62)  # 48..59
INNER_X = (-1.0, -0.5, 0.0, 0.5, 1.0, 0.5, 0.0, -0.5)  # 60..67, as shares of the inner half width

CAVITY_RGB = (52, 16, 20)
TONGUE_RGB = (150, 66, 72)
TEETH_RGB = (226, 220, 204)


@dataclass(frozen=True, eq=False)
class Face:
    """A face photograph cropped to the frame, and its landmarks."""

    image: np.ndarray  # uint8 [H, W, 3] RGB
    landmarks: np.ndarray  # float32 [68, 2] (x, y) px in ``image``
    name: str = "face"


@dataclass(frozen=True)
class FaceStyle:
    """How one synthetic speaker's face differs from the photo (mouth and colour)."""

    mouth_scale: float = 1.0  # rest mouth width relative to 0.9x the photo's mouth width
    lip_thickness: float = 1.0  # both lips' height
    lower_lip: float = 1.0  # lower lip height relative to the upper
    opening: float = 1.0  # gain on the jaw opening (how wide this speaker opens)
    roundness: float = 1.0  # how much protrusion narrows and rounds the mouth
    mouth_offset: float = 0.0  # vertical shift of the mouth, in rest mouth widths
    lip_rgb: tuple[float, float, float] = (1.1, 0.85, 0.9)  # gains on the lips' colour
    teeth_shade: float = 1.0  # teeth brightness
    side_light: float = 0.0  # -0.3..0.3: brightness slope across the face (light from one side)


@dataclass(frozen=True)
class CameraStyle:
    """What one recording's camera does to every frame (besides the head pose)."""

    rgb_gain: tuple[float, float, float] = (1.0, 1.0, 1.0)  # white balance
    contrast: float = 1.0
    brightness: float = 0.0  # added after contrast, in 0..255 units
    gamma: float = 1.0
    blur: float = 0.0  # Gaussian sigma in px; 0 = none
    noise: float = 0.0  # sensor noise standard deviation in 0..255 units
    jpeg_quality: int = 0  # 1..100 re-encodes every frame as JPEG; 0 = none


def prepare_face(image: np.ndarray, landmarks: np.ndarray, frame_size: int, face_share: float = 0.55,
                 name: str = "face") -> Face:  # fmt: skip
    """Crop and scale a photo so the face sits in the middle of a square frame.

    Args:
        image: uint8 [H, W, 3] RGB photo.
        landmarks: float [68, 2] of the face in ``image`` (from ``lipnet_ko.video.landmarks``).
        frame_size: side of the output frame in px.
        face_share: jaw width (landmark 0 to 16) as a share of the frame width.

    Returns:
        A :class:`Face` of ``frame_size`` x ``frame_size`` px with the landmarks moved along.
    """
    points = np.asarray(landmarks, dtype=np.float64)
    jaw = float(np.linalg.norm(points[16] - points[0]))
    if jaw < 8:
        raise ValueError(f"face {name!r} is only {jaw:.0f} px wide; use a photo with a larger face")
    scale = face_share * frame_size / jaw
    centre = np.array([(points[0, 0] + points[16, 0]) / 2, (points[27, 1] + points[8, 1]) / 2])
    matrix = np.array([[scale, 0, frame_size / 2 - scale * centre[0]], [0, scale, frame_size / 2 - scale * centre[1]]])
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    cropped = cv2.warpAffine(image, matrix, (frame_size, frame_size), flags=interpolation, borderMode=cv2.BORDER_REFLECT101)
    moved = points @ matrix[:, :2].T + matrix[:, 2]
    return Face(image=cropped, landmarks=moved.astype(np.float32), name=name)


def mirror_face(face: Face) -> Face:
    """The face flipped left-right, with the landmarks renumbered to stay iBUG-ordered."""
    width = face.image.shape[1]
    flipped = face.landmarks.copy()
    flipped[:, 0] = width - 1 - flipped[:, 0]
    order = list(range(16, -1, -1)) + list(range(26, 16, -1)) + list(range(27, 31)) + list(range(35, 30, -1))
    order += [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    order += [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65]
    return Face(image=np.ascontiguousarray(face.image[:, ::-1]), landmarks=flipped[order], name=f"{face.name}-mirrored")


def mouth_shape_points(params: np.ndarray, width: float, style: FaceStyle) -> np.ndarray:
    """The 20 mouth landmarks (48-67) of a parametric mouth, in mouth coordinates.

    Args:
        params: float [6] MouthShape fields (jaw_open, lip_width, lip_protrusion, lip_closure,
            teeth_visible, tongue_visible).
        width: the speaker's rest mouth width in px.
        style: the speaker's mouth proportions.

    Returns:
        float64 [20, 2]: x along the line of the mouth corners, y down the face, both in px from
        the point where the lips meet at rest.
    """
    jaw, spread, protrusion = float(params[0]), float(params[1]), float(params[2]) * style.roundness
    closure = float(params[3])
    half = 0.5 * width * (1 + 0.4 * (spread - REST_SHAPE.lip_width)) * (1 - 0.22 * protrusion)
    gap = width * MAX_GAP * style.opening * jaw * (1 - closure)
    up, down = UPPER_SHARE * gap, (1 - UPPER_SHARE) * gap
    thick = style.lip_thickness * (1 + 0.45 * protrusion) * (1 - 0.15 * jaw)
    upper, lower = width * UPPER_LIP * thick, width * LOWER_LIP * thick * style.lower_lip
    corner_y = 0.15 * gap - 0.03 * width * (spread - REST_SHAPE.lip_width)
    inner_half = half * (0.9 - 0.3 * protrusion)
    # Opening profile: elliptical when rounded, flatter (a slit with rounded ends) when spread.
    power = 2.0 + 2.0 * max(0.0, spread - protrusion)

    def opening(x: np.ndarray) -> np.ndarray:
        r = np.clip(np.abs(x) / inner_half, 0.0, 1.0)
        return (1 - r**power) ** (1 / power)

    def baseline(x: np.ndarray) -> np.ndarray:
        return corner_y * (np.abs(x) / half) ** 2

    def lip_profile(x: np.ndarray) -> np.ndarray:  # lip height tapers towards the corners
        r = np.clip(np.abs(x) / half, 0.0, 1.0)
        return (0.25 + 0.25 * protrusion) + (0.75 - 0.25 * protrusion) * np.sqrt(1 - r**2)

    ox = np.array(OUTER_X) * half
    outer = np.zeros((12, 2))
    outer[:, 0] = ox
    top, bottom = slice(1, 6), slice(7, 12)
    bow = np.array([0.0, 0.12, -0.06, 0.12, 0.0])  # cupid's bow: peaks at 50 and 52, a dip at 51
    outer[top, 1] = baseline(ox[top]) - up * opening(ox[top]) - upper * (lip_profile(ox[top]) + bow)
    outer[bottom, 1] = baseline(ox[bottom]) + down * opening(ox[bottom]) + lower * lip_profile(ox[bottom])
    outer[[0, 6], 1] = corner_y
    ix = np.array(INNER_X) * inner_half
    inner = np.zeros((8, 2))
    inner[:, 0] = ix
    inner[1:4, 1] = baseline(ix[1:4]) - up * opening(ix[1:4])
    inner[5:8, 1] = baseline(ix[5:8]) + down * opening(ix[5:8])
    inner[[0, 4], 1] = baseline(ix[[0, 4]])
    return np.concatenate([outer, inner])


class FaceRenderer:
    """Renders one face with one speaker's style for any mouth parameters.

    Built once per (face, style); ``render`` is then called per frame. The triangulation of the warp
    is fixed (a Delaunay triangulation of the mouth at a mid opening), so triangles keep their
    orientation for every shape the articulation produces (checked in tests/synth/test_corpus.py).
    """

    def __init__(self, face: Face, style: FaceStyle | None = None):
        self.face = face
        self.style = style or FaceStyle()
        points = face.landmarks.astype(np.float64)
        height, width = face.image.shape[:2]
        self._source = points
        corners = points[54] - points[48]
        self._u = corners / np.linalg.norm(corners)  # along the mouth, left to right in the image
        self._v = np.array([-self._u[1], self._u[0]])  # down the face
        self.mouth_width = 0.9 * float(np.linalg.norm(corners)) * self.style.mouth_scale  # px at rest
        self._origin = points[INNER_LIP].mean(axis=0) + self._v * self.style.mouth_offset * self.mouth_width
        self._nose_room = float(np.min((self._origin - points[31:36]) @ self._v))  # px from the lips up to the nose
        face_width = float(np.linalg.norm(points[16] - points[0]))
        x0 = max(0, int(np.floor(points[[2, 3, 4], 0].min() - 0.05 * face_width)))
        x1 = min(width, int(np.ceil(points[[12, 13, 14], 0].max() + 0.05 * face_width)) + 1)
        y0 = max(0, int(np.floor(points[30, 1])))
        y1 = min(height, int(np.ceil(points[8, 1] + 0.3 * face_width)) + 1)
        self.roi = (x0, y0, x1, y1)
        xs, ys = np.linspace(x0, x1 - 1, 5), np.linspace(y0, y1 - 1, 5)
        border = [(x, y0) for x in xs] + [(x, y1 - 1) for x in xs] + [(x0, y) for y in ys[1:-1]] + [(x1 - 1, y) for y in ys[1:-1]]
        self._border = np.array(border, dtype=np.float64)
        self._moving = list(JAW_WEIGHTS) + list(range(48, 68))
        self._index = list(ANCHORS) + self._moving  # landmark ids of the warp's vertices (borders follow)
        mid = MOUTH_SHAPES["M:eo"].astuple()
        triangles = Delaunay(self._targets(np.array(mid))).simplices
        n_land = len(self._index)
        inner_ids = {self._index.index(i) for i in range(60, 68)}
        self._triangles = np.array([t for t in triangles if not set(t.tolist()) <= inner_ids])  # [N, 3] vertex ids
        src = np.concatenate([points[self._index], self._border])
        self._src_vertices = src  # [V, 2]
        self._num_landmark_vertices = n_land
        yy, xx = np.mgrid[y0:y1, x0:x1]
        self._grid_x, self._grid_y = xx.astype(np.float32), yy.astype(np.float32)
        self.base = self._style_base(face.image)

    def _style_base(self, image: np.ndarray) -> np.ndarray:
        """The photo with this speaker's lip colour and side light, done once instead of per frame."""
        out = image.astype(np.float32)
        height, width = image.shape[:2]
        lips = np.zeros((height * SUPERSAMPLE, width * SUPERSAMPLE), np.uint8)
        scale = SUPERSAMPLE * 16  # fillPoly with shift=4: 1/16 px precision
        cv2.fillPoly(lips, [np.round(self._source[OUTER_LIP] * scale).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
        cv2.fillPoly(lips, [np.round(self._source[INNER_LIP] * scale).astype(np.int32)], 0, cv2.LINE_AA, shift=4)
        mask = cv2.resize(lips, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        mask = cv2.GaussianBlur(mask, (0, 0), 0.8)[..., None]
        out = out * (1 - mask) + out * np.array(self.style.lip_rgb, np.float32) * mask
        if self.style.side_light:
            ramp = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :, None]
            out *= 1.0 + self.style.side_light * ramp
        return np.clip(out, 0, 255).astype(np.uint8)

    def _targets(self, params: np.ndarray) -> np.ndarray:
        """Warp vertices for these parameters: anchors fixed, chin lowered, mouth replaced. [V, 2]."""
        points = self._source.copy()
        local = mouth_shape_points(params, self.mouth_width, self.style)
        top, limit = -local[:, 1].min(), 0.75 * self._nose_room
        if top > limit:  # a thick or raised upper lip would run into the nose: squeeze the upper half
            local[local[:, 1] < 0, 1] *= limit / top
        points[MOUTH] = self._origin + local[:, :1] * self._u + local[:, 1:] * self._v
        drop = (1 - UPPER_SHARE) * self.mouth_width * MAX_GAP * self.style.opening * float(params[0]) * (1 - float(params[3]))
        for index, weight in JAW_WEIGHTS.items():
            points[index] = self._source[index] + self._v * drop * 0.9 * weight
        return np.concatenate([points[self._index], self._border])

    def landmarks_for(self, params: np.ndarray) -> np.ndarray:
        """float32 [68, 2]: the face's landmarks as rendered for these parameters (mouth and chin moved)."""
        vertices = self._targets(np.asarray(params, np.float64))
        points = self._source.copy()
        points[self._index] = vertices[: self._num_landmark_vertices]
        return points.astype(np.float32)

    def triangle_areas(self, params: np.ndarray) -> np.ndarray:
        """Signed area of every warp triangle at these parameters (a sign change = a fold)."""
        v = self._targets(np.asarray(params, np.float64))[self._triangles]  # [N, 3, 2]
        a, b = v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]
        return 0.5 * (a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0])

    def render(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One frame of the face with its mouth at ``params``.

        Args:
            params: float [6] MouthShape fields in [0, 1].

        Returns:
            (frame uint8 [H, W, 3] RGB, landmarks float32 [68, 2] of the rendered face).
        """
        params = np.asarray(params, dtype=np.float64)
        targets = self._targets(params)
        frame = self.base.copy()
        x0, y0, x1, y1 = self.roi
        dst = targets[self._triangles]  # [N, 3, 2]
        src = self._src_vertices[self._triangles]
        dst_h = np.concatenate([dst, np.ones((*dst.shape[:2], 1))], axis=2)  # [N, 3, 3]
        det = np.linalg.det(dst_h)
        usable = np.abs(det) > 1e-6
        maps = np.zeros((len(dst), 3, 2))
        maps[usable] = np.linalg.solve(dst_h[usable], src[usable])  # dst_h @ maps = src: [x y 1] -> source (x, y)
        labels = np.full((y1 - y0, x1 - x0), -1, np.int32)
        corners = np.round((dst - np.array([x0, y0])) * 16).astype(np.int32)  # 4 fractional bits for fillConvexPoly
        for k in np.flatnonzero(usable):
            cv2.fillConvexPoly(labels, corners[k], int(k), cv2.LINE_8, 4)
        identity = labels < 0
        labels[identity] = len(dst)  # an extra identity map for pixels no triangle covers
        coefficients = np.concatenate([maps.reshape(-1, 6), [[1, 0, 0, 1, 0, 0]]]).astype(np.float32)[labels]  # [h, w, 6]
        map_x = coefficients[..., 0] * self._grid_x + coefficients[..., 2] * self._grid_y + coefficients[..., 4]
        map_y = coefficients[..., 1] * self._grid_x + coefficients[..., 3] * self._grid_y + coefficients[..., 5]
        frame[y0:y1, x0:x1] = cv2.remap(self.base, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        landmarks = self._source.copy()
        landmarks[self._index] = targets[: self._num_landmark_vertices]
        self._paint_mouth(frame, landmarks, params)
        return frame, landmarks.astype(np.float32)

    def _paint_mouth(self, frame: np.ndarray, landmarks: np.ndarray, params: np.ndarray) -> None:
        """Draw cavity, tongue and teeth inside the inner lips, and the line where the lips meet."""
        inner = landmarks[INNER_LIP]
        gap = float(np.linalg.norm(inner[2] - inner[6]))
        lo = np.floor(landmarks[OUTER_LIP].min(axis=0)).astype(int) - 2
        hi = np.ceil(landmarks[OUTER_LIP].max(axis=0)).astype(int) + 3
        lo = np.maximum(lo, 0)
        hi = np.minimum(hi, [frame.shape[1], frame.shape[0]])
        size = (hi - lo) * SUPERSAMPLE
        scale = SUPERSAMPLE * 16

        def fixed(points: np.ndarray) -> np.ndarray:  # image px -> supersampled patch, 4 fractional bits
            return np.round((np.asarray(points) - lo) * scale).astype(np.int32)

        patch = frame[lo[1]:hi[1], lo[0]:hi[0]]
        if gap >= 0.4:
            mask = np.zeros((size[1], size[0]), np.uint8)
            cv2.fillPoly(mask, [fixed(inner)], 255, cv2.LINE_AA, shift=4)
            canvas = np.broadcast_to(np.array(CAVITY_RGB, np.uint8), (size[1], size[0], 3)).copy()
            width = self.mouth_width
            centre_up, centre_down = inner[2], inner[6]
            u, v = self._u, self._v
            teeth, tongue = float(params[4]), float(params[5])
            if tongue > 0.05:
                centre = centre_down - v * (0.02 + 0.12 * tongue) * gap
                axes = (0.24 * width * SUPERSAMPLE * 16, (0.1 + 0.22 * tongue) * gap * SUPERSAMPLE * 16)
                angle = float(np.degrees(np.arctan2(u[1], u[0])))
                cv2.ellipse(canvas, tuple(fixed(centre).tolist()), tuple(max(1, int(a)) for a in axes), angle, 0, 360,
                            TONGUE_RGB, -1, cv2.LINE_AA, 4)
            if teeth > 0.02:
                shade = np.clip(np.array(TEETH_RGB) * self.style.teeth_shade, 0, 255)
                half = 0.36 * width
                upper_h = (0.04 + 0.12 * teeth) * width
                lower_h = (0.02 + 0.07 * teeth) * width
                for anchor, depth, sign in ((centre_up, upper_h, 1.0), (centre_down, lower_h, -1.0)):
                    far = anchor - sign * v * 0.5 * width
                    near = anchor + sign * v * depth
                    band = np.array([far - u * half, far + u * half, near + u * half * 0.9, near - u * half * 0.9])
                    colour = tuple(float(c) * (1.0 if sign > 0 else 0.9) for c in shade)
                    cv2.fillConvexPoly(canvas, fixed(band), colour, cv2.LINE_AA, 4)
                    seams = [
                        fixed(np.array([x - sign * v * 0.5 * width, x + sign * v * depth]))
                        for x in anchor + u[None] * (np.arange(-2, 3)[:, None] * 0.11 + 0.055) * width
                    ]  # gaps between the incisors
                    cv2.polylines(canvas, seams, False, tuple(0.86 * c for c in colour), 1, cv2.LINE_AA, 4)
            small = cv2.resize(canvas, (hi[0] - lo[0], hi[1] - lo[1]), interpolation=cv2.INTER_AREA).astype(np.float32)
            alpha = cv2.resize(mask, (hi[0] - lo[0], hi[1] - lo[1]), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
            # Shadow of the lips on the inside: darker near the lip edges, a soft blur of the mask.
            depth = cv2.GaussianBlur(alpha, (0, 0), max(0.6, 0.08 * self.mouth_width))
            small *= (0.45 + 0.55 * np.clip(depth * 1.6, 0, 1))[..., None]
            patch[:] = np.clip(patch * (1 - alpha[..., None]) + small * alpha[..., None], 0, 255).astype(np.uint8)
        # The line where the lips meet, darkest when they are closed.
        line = np.zeros((size[1], size[0]), np.uint8)
        contour = np.concatenate([inner[0:5], inner[[4, 5, 6, 7, 0]]]) if gap < 0.4 else inner[0:5]
        cv2.polylines(line, [fixed(contour)], False, 255, SUPERSAMPLE, cv2.LINE_AA, 4)
        shade = cv2.resize(line, (hi[0] - lo[0], hi[1] - lo[1]), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        strength = 0.4 if gap < 0.4 else 0.25
        patch[:] = np.clip(patch * (1 - strength * shade[..., None]), 0, 255).astype(np.uint8)


def pose_matrix(angle_deg: float, scale: float, shift: tuple[float, float], size: tuple[int, int]) -> np.ndarray:
    """float64 [2, 3]: rotate by ``angle_deg`` and scale about the frame centre, then shift (px)."""
    width, height = size
    matrix = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), angle_deg, scale)
    matrix[:, 2] += shift
    return matrix


def apply_camera(frame: np.ndarray, pose: np.ndarray, camera: CameraStyle, noise: np.ndarray | None = None) -> np.ndarray:
    """Head pose and camera effects on one rendered frame.

    Args:
        frame: uint8 [H, W, 3] RGB.
        pose: float [2, 3] similarity transform (``pose_matrix``); apply the same to the landmarks.
        camera: colour, blur, noise and compression settings.
        noise: float32 or int16 [H, W, 3] noise pattern for this frame (unit standard deviation);
            None adds none.

    Returns:
        uint8 [H, W, 3] RGB.
    """
    height, width = frame.shape[:2]
    out = cv2.warpAffine(frame, pose, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    out = cv2.LUT(out, _tone_table(camera))
    if camera.blur > 0.2:
        out = cv2.GaussianBlur(out, (0, 0), camera.blur)
    if noise is not None and camera.noise > 0:
        out = np.clip(out.astype(np.float32) + noise * camera.noise, 0, 255).astype(np.uint8)
    if camera.jpeg_quality:
        ok, data = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(camera.jpeg_quality)])
        if ok:
            out = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    return out


def _tone_table(camera: CameraStyle) -> np.ndarray:
    """uint8 [256, 1, 3] lookup table: white balance, contrast about mid grey, brightness, gamma."""
    x = np.arange(256, dtype=np.float64)[:, None] / 255.0  # [256, 1]
    y = (x * np.array(camera.rgb_gain) - 0.5) * camera.contrast + 0.5 + camera.brightness / 255.0
    y = np.clip(y, 0.0, 1.0) ** camera.gamma
    return np.round(y * 255.0).astype(np.uint8)[:, None, :]


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a [2, 3] affine matrix to float [N, 2] points."""
    return (np.asarray(points, np.float64) @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)
