"""Draw landmarks as a skeleton, to check an extraction or an imported dataset by eye.

`signrec show LANDMARKS.npy --out sheet.png` draws a contact sheet (a grid of evenly spaced frames);
`--out clip.gif` or `--out clip.mp4` an animation. With `--video` the skeleton is drawn over the video the
landmarks came from, otherwise on a white canvas. Either way the view is fitted to where the landmarks
are, so the signer fills the picture, and arrays in other coordinates (hands-only sets centred between
the shoulders) still show. Parts that are NaN (not detected) are not drawn.

Colours (BGR): pose orange, face blue-grey, left hand green, right hand magenta. "Left" is MediaPipe's:
the person's left hand in unmirrored video.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from mediapipe.python.solutions.face_mesh_connections import FACEMESH_CONTOURS
from mediapipe.python.solutions.hands_connections import HAND_CONNECTIONS
from mediapipe.python.solutions.pose_connections import POSE_CONNECTIONS

from signrec import SignrecError
from signrec.files import atomic_path
from signrec.landmarks import PARTS, LandmarkError, read_npy, validate
from signrec.landmarks.dataset import VIDEO_EXTENSIONS
from signrec.video.sources import open_video_file

SHEET_SUFFIXES = (".png", ".jpg", ".jpeg")
ANIMATION_SUFFIXES = (".gif", ".mp4")
SHEET_FRAMES = 12
DEFAULT_FPS = 15.0
MARGIN = 0.12
"""Space around the landmarks' extent, as a fraction of its size."""
FIT_POINTS = np.r_[0:25, 33:543]
"""Landmarks the view is fitted to: all but the legs (pose 25-32), which signing rarely shows and
MediaPipe guesses far below the frame."""

BACKGROUND = (255, 255, 255)
TEXT = (40, 40, 40)
STYLE: dict[str, tuple[tuple[int, int, int], Iterable[tuple[int, int]], bool]] = {
    # part: (BGR colour, connections as indices within the part, draw joints)
    "face": ((170, 130, 90), sorted(FACEMESH_CONTOURS), False),
    "pose": ((40, 150, 255), sorted(POSE_CONNECTIONS), True),
    "left_hand": ((60, 180, 40), sorted(HAND_CONNECTIONS), True),
    "right_hand": ((200, 60, 200), sorted(HAND_CONNECTIONS), True),
}


class ShowError(SignrecError):
    """A landmark file, video or output name that can not be drawn, with the file named."""


@dataclass(frozen=True)
class View:
    """The part of the source plane that is drawn, and the tile it is drawn into.

    Source units are video pixels with a video, the landmarks' own units without one.
    """

    x0: float
    y0: float
    scale: float  # tile pixels per source unit
    width: int
    height: int
    unit: tuple[float, float] = (1.0, 1.0)  # landmark (x, y) -> source units (the video's size)

    def project(self, xy: np.ndarray) -> np.ndarray:
        """(n, 2) landmark x, y -> (n, 2) tile pixel coordinates (NaN stays NaN)."""
        return (xy * np.asarray(self.unit) - (self.x0, self.y0)) * self.scale


def fit_view(array: np.ndarray, width: int, frame_size: tuple[int, int] | None = None,
             aspect: float = 1.0) -> View:
    """A view of the upper body's non-missing landmarks (with a margin), `width` pixels wide.

    With `frame_size` (video width, height) coordinates are MediaPipe's normalised image coordinates
    and the view is kept inside the video frame. Without it, x is stretched by `aspect`: MediaPipe
    divides x by the image width and y by its height, so a 16:9 video's landmarks need aspect 16/9.
    """
    unit = (float(frame_size[0]), float(frame_size[1])) if frame_size else (float(aspect), 1.0)
    xy = array[:, FIT_POINTS, :2].reshape(-1, 2) * unit
    xy = xy[~np.isnan(xy).any(axis=1)]
    if len(xy):
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        centre, size = (lo + hi) / 2, np.maximum(hi - lo, 1e-6) * (1 + 2 * MARGIN)
    elif frame_size:
        centre, size = np.asarray(unit) / 2, np.asarray(unit)
    else:
        centre, size = np.array([0.5, 0.5]), np.array([1.0, 1.0])
    ratio = size[1] / size[0]
    if not 1 / 3 <= ratio <= 3:  # a very thin extent (one hand, one frame): widen it to at most 1:3
        size = np.maximum(size, size[::-1] / 3)
    if frame_size:  # a video: crop to the person, but never outside the frame
        size = np.minimum(np.maximum(size, np.asarray(unit) * 0.25), unit)
        centre = np.clip(centre, size / 2, np.asarray(unit) - size / 2)
    height = max(2, int(round(width * float(size[1] / size[0]) / 2)) * 2)
    x0, y0 = centre - size / 2
    return View(float(x0), float(y0), width / float(size[0]), width, height, unit)


def draw_skeleton(image: np.ndarray, frame: np.ndarray, view: View) -> np.ndarray:
    """Draw one (543, 3) landmark frame onto `image` (BGR, modified in place) and return it."""
    thickness = max(1, round(view.width / 240))
    for name, (colour, connections, joints) in STYLE.items():
        points = view.project(frame[PARTS[name], :2])
        ok = ~np.isnan(points).any(axis=1)
        if not ok.any():
            continue
        pix = np.zeros_like(points, dtype=np.int32)
        pix[ok] = np.round(points[ok]).astype(np.int32)
        for a, b in connections:
            if ok[a] and ok[b]:
                cv2.line(image, tuple(map(int, pix[a])), tuple(map(int, pix[b])), colour,
                         thickness if name != "face" else max(1, thickness - 1), cv2.LINE_AA)
        if joints:
            for p in pix[ok]:
                cv2.circle(image, (int(p[0]), int(p[1])), thickness + 1, colour, -1, cv2.LINE_AA)
    return image


def sample_indices(n_frames: int, count: int | None) -> list[int]:
    """`count` evenly spaced frame indices (all frames when count is None or larger)."""
    if count is None or count >= n_frames:
        return list(range(n_frames))
    if count < 1:
        raise ShowError(f"--frames must be at least 1, got {count}")
    return sorted({int(round(i)) for i in np.linspace(0, n_frames - 1, count)})


def _video_tiles(video: Path, indices: Sequence[int], n_landmark_frames: int, view: View,
                 frame_count: int) -> list[np.ndarray]:
    """Crops of the video frames matching landmark frames `indices`, resized to the view's tile."""
    # Landmarks taken every k-th frame (extract's frame_step) map back proportionally.
    wanted = {min(frame_count - 1, int(round(i * frame_count / n_landmark_frames))): i for i in indices}
    x0, y0 = int(round(view.x0)), int(round(view.y0))
    x1, y1 = int(round(view.x0 + view.width / view.scale)), int(round(view.y0 + view.height / view.scale))
    cap = open_video_file(video)
    tiles: dict[int, np.ndarray] = {}
    last = None
    try:
        for pos in range(max(wanted) + 1):
            ok, frame = cap.read()
            if not ok:
                break
            last = frame
            if pos in wanted:
                tiles[wanted[pos]] = cv2.resize(frame[max(0, y0):y1, max(0, x0):x1], (view.width, view.height),
                                                interpolation=cv2.INTER_AREA)
    finally:
        cap.release()
    if last is None:
        raise ShowError(f"{video}: no frames could be read")
    fallback = cv2.resize(last[max(0, y0):y1, max(0, x0):x1], (view.width, view.height))
    return [tiles.get(i, fallback).copy() for i in indices]


def _video_info(video: Path) -> tuple[tuple[int, int], int, float]:
    if not video.is_file():
        raise ShowError(f"{video}: no such video")
    cap = open_video_file(video)
    try:
        size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        count, fps = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    finally:
        cap.release()
    if min(size) <= 0 or count <= 0:
        raise ShowError(f"{video}: can not read its size or frame count")
    return size, count, fps


def load_any(path: str | os.PathLike) -> np.ndarray:
    """A landmark .npy file; hands-only (T, 2, 21, 3) arrays are accepted too (see signrec.formats)."""
    from signrec.landmarks.formats import from_hands

    try:
        raw = read_npy(path)
    except LandmarkError as exc:  # not a .npy at all; named like a video, it likely is the video itself
        if Path(path).suffix.lower() not in VIDEO_EXTENSIONS:
            raise
        raise ShowError(f"{exc}. To draw a video's landmarks, extract them first (`signrec extract {path} "
                        f"--out DIR`), then show the .npy, with `--video {path}` to draw over the video") from None
    if raw.ndim == 4 and raw.shape[1:] == (2, 21, 3):
        return from_hands(raw, path)
    return validate(raw, path)


def render(landmarks: np.ndarray | str | os.PathLike, out: str | os.PathLike,
           video: str | os.PathLike | None = None, frames: int | None = None, width: int = 320,
           fps: float | None = None, aspect: float = 1.0) -> dict[str, object]:
    """Draw to `out`: a contact sheet (.png/.jpg, `frames` defaults to 12) or an animation (.gif/.mp4,
    all frames unless `frames` is given). Returns what was written."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in SHEET_SUFFIXES + ANIMATION_SUFFIXES:
        raise ShowError(f"{out}: choose an output ending in one of {', '.join(SHEET_SUFFIXES + ANIMATION_SUFFIXES)}")
    if not aspect > 0:
        raise ShowError(f"--aspect must be positive, got {aspect}")
    if width < 16:
        raise ShowError(f"--width must be at least 16 pixels, got {width}")
    width -= width % 2  # video codecs want even sizes
    array = validate(landmarks) if isinstance(landmarks, np.ndarray) else load_any(landmarks)
    sheet = suffix in SHEET_SUFFIXES
    indices = sample_indices(len(array), SHEET_FRAMES if sheet and frames is None else frames)
    if video is not None:
        video = Path(video)
        size, count, video_fps = _video_info(video)
        view = fit_view(array, width, size)
        tiles = _video_tiles(video, indices, len(array), view, count)
    else:
        video_fps = 0.0
        view = fit_view(array, width, aspect=aspect)
        tiles = [np.full((view.height, view.width, 3), BACKGROUND, np.uint8) for _ in indices]
    for tile, i in zip(tiles, indices, strict=True):
        draw_skeleton(tile, array[i], view)
        _label(tile, f"{i}")
    if sheet:
        image = _grid(tiles)
        _write_sheet(out, image)
    else:
        image = tiles[0]
        _write_animation(out, tiles, fps or video_fps or DEFAULT_FPS)
    return {"out": str(out), "frames": indices, "size": [image.shape[1], image.shape[0]]}


def _label(tile: np.ndarray, text: str) -> None:
    scale = max(0.35, tile.shape[1] / 700)
    org = (4, int(16 * scale / 0.45))
    cv2.putText(tile, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 3, cv2.LINE_AA)
    cv2.putText(tile, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, TEXT, 1, cv2.LINE_AA)


def _grid(tiles: Sequence[np.ndarray]) -> np.ndarray:
    cols = math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / cols)
    h, w = tiles[0].shape[:2]
    sheet = np.full((rows * h + (rows - 1) * 2, cols * w + (cols - 1) * 2, 3), 255, np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, cols)
        sheet[r * (h + 2):r * (h + 2) + h, c * (w + 2):c * (w + 2) + w] = tile
    return sheet


def _write_sheet(out: Path, image: np.ndarray) -> None:
    with atomic_path(out, suffix=out.suffix) as tmp:
        params = [cv2.IMWRITE_PNG_COMPRESSION, 9] if out.suffix.lower() == ".png" else []
        if not cv2.imwrite(str(tmp), image, params):
            raise ShowError(f"{out}: could not write the image")


def _write_animation(out: Path, tiles: Sequence[np.ndarray], fps: float) -> None:
    with atomic_path(out, suffix=out.suffix) as tmp:
        if out.suffix.lower() == ".gif":
            from PIL import Image

            images = [Image.fromarray(cv2.cvtColor(t, cv2.COLOR_BGR2RGB)) for t in tiles]
            images[0].save(tmp, save_all=True, append_images=images[1:], duration=max(20, round(1000 / fps)),
                           loop=0, optimize=True)
            return
        h, w = tiles[0].shape[:2]
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        if not writer.isOpened():
            raise ShowError(f"{out}: OpenCV could not open an mp4v writer")
        try:
            for tile in tiles:
                writer.write(tile)
        finally:
            writer.release()


