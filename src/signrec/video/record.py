"""Record a person's own signs into a signrec dataset: the tutorial's hand-written collection loop, done right.

For each sign and take: a countdown (live sources only), a few seconds of frames through MediaPipe Holistic, the
quality checks of quality.py, then keep or redo. Each kept take is written at once and atomically as
DIR/landmarks/<sign>/<take>.npy (+ DIR/videos/<sign>/<take>.mp4), and DIR/labels.csv and DIR/manifest.json are
rewritten after it, so an interrupted session keeps every finished take and a rerun records only the missing ones.

A video file stands in for the camera (tests, scripts): it is cut into takes by time, one after another.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from signrec import SignrecError, __version__, landmarks
from signrec.files import atomic_path, write_json
from signrec.landmarks.dataset import Sample, write_labels
from signrec.video.holistic import HolisticExtractor
from signrec.video.quality import Hint, check_take, picture_stats
from signrec.video.settings import ExtractSettings
from signrec.video.show import View, draw_skeleton
from signrec.video.sources import FrameSource, Latest

MANIFEST = "manifest.json"


class RecordError(SignrecError):
    """A recording session that can not start or go on, with the folder or sign named."""


@dataclass
class Take:
    """One recorded take: its landmarks, picture stats, length, frames (only kept with videos) and hints."""

    sign: str
    number: int
    landmarks: np.ndarray
    pictures: list[tuple[float, float]]
    seconds: float
    fps: float
    frames: list[np.ndarray] = field(default_factory=list)
    hints: list[Hint] = field(default_factory=list)

    @property
    def rel(self) -> str:
        return f"{self.sign}/{self.number:02d}"


@dataclass
class Report:
    """What a session did: takes kept, takes skipped with the reasons, takes still missing."""

    kept: list[str] = field(default_factory=list)
    redone: dict[str, list[list[str]]] = field(default_factory=dict)
    skipped: dict[str, list[str]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    stopped: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


Review = Callable[[Take, int], str]
"""Decides on a take given how many attempts are left after it: "keep", "redo" or "quit"."""


def headless_review(take: Take, attempts_left: int) -> str:
    """Keep a good take; redo a bad one while attempts are left (the caller skips it after the last)."""
    return "keep" if not take.hints else "redo"


def check_signs(signs: Sequence[str]) -> list[str]:
    """The signs as folder names: non-empty, no path separators, each once."""
    out: list[str] = []
    for sign in (s.strip() for s in signs):
        if not sign or sign in (".", "..") or "/" in sign or "\\" in sign:
            raise RecordError(f"--signs: {sign!r} can not be a folder name; use letters, digits, spaces or -")
        if sign not in out:
            out.append(sign)
    if not out:
        raise RecordError("--signs: no signs to record; give e.g. --signs hello,thanks")
    return out


class Session:
    """The dataset folder being recorded: what is there already, and writing a take into it."""

    def __init__(self, out: str | os.PathLike, settings: ExtractSettings, signer: str | None = None):
        self.out = Path(out)
        self.settings = settings
        self.signer = signer
        self.manifest = self._load_manifest()

    def _load_manifest(self) -> dict[str, Any]:
        path = self.out / MANIFEST
        fresh = {"extractor": {"signrec": __version__, "settings": asdict(self.settings)}, "takes": {}}
        if not path.exists():
            return fresh
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
            old = manifest["extractor"]["settings"]
            takes = dict(manifest.get("takes", {}))
        except (OSError, ValueError, KeyError, TypeError):
            raise RecordError(f"{path}: not a manifest of `signrec record`; use another --out") from None
        if old != asdict(self.settings):
            raise RecordError(f"{self.out} was recorded with other landmark settings {old}; now "
                              f"{asdict(self.settings)}: use the same settings, or another --out")
        return {**fresh, "takes": takes}

    def npy(self, sign: str, number: int) -> Path:
        return self.out / "landmarks" / sign / f"{number:02d}.npy"

    def todo(self, signs: Sequence[str], takes: int) -> list[tuple[str, int]]:
        """The takes not recorded yet, in order."""
        return [(sign, n) for sign in signs for n in range(1, takes + 1) if not self.npy(sign, n).exists()]

    def save(self, take: Take, keep_video: bool) -> None:
        """Write a take's landmarks (and video), then labels.csv and the manifest: each file atomically."""
        if keep_video and take.frames:
            video = self.out / "videos" / f"{take.rel}.mp4"
            with atomic_path(video, suffix=".mp4") as tmp:
                h, w = take.frames[0].shape[:2]
                writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), take.fps or 15.0, (w, h))
                for frame in take.frames:
                    writer.write(frame)
                writer.release()
        landmarks.save(self.npy(take.sign, take.number), take.landmarks)
        self.manifest["takes"][take.rel] = {"sign": take.sign, "take": take.number, "signer": self.signer,
                                            "frames": len(take.landmarks), "seconds": round(take.seconds, 3),
                                            "detection_rate": landmarks.presence(take.landmarks),
                                            "hints": [h.to_json() for h in take.hints]}
        self.write_index()

    def write_index(self) -> None:
        """labels.csv of every take on disk (earlier sessions' too) and the manifest."""
        samples = []
        for rel, info in sorted(self.manifest["takes"].items()):
            path = self.npy(info["sign"], int(info["take"]))
            if path.exists():
                extra = {"take": f"{int(info['take']):02d}"}
                if (self.out / "videos" / f"{rel}.mp4").exists():
                    extra["video"] = f"videos/{rel}.mp4"
                samples.append(Sample(path.resolve(), info["sign"], info.get("signer"), extra))
        write_json(self.out / MANIFEST, self.manifest)
        if samples:
            write_labels(self.out / "labels.csv", samples)


Show = Callable[[np.ndarray, np.ndarray | None, str], bool]
"""Shows a frame (with its landmarks, if any) and a line of text; False when the person asked to stop."""


def _frames(source: FrameSource) -> Iterator[tuple[float, np.ndarray]]:
    return iter(Latest(iter(source))) if source.live else iter(source)


def record_take(frames: Iterator[tuple[float, np.ndarray]], sign: str, number: int, settings: ExtractSettings,
                seconds: float, fps: float, uses_face: bool, keep_video: bool, show: Show | None = None,
                ) -> Take | None:
    """Record `seconds` of frames from `frames` into a Take (checked); None if the source ended first."""
    points, pictures, kept = [], [], []
    start: float | None = None
    last = 0.0
    with HolisticExtractor(settings) as holistic:  # one graph per take: no tracking across takes
        for index, (t, frame) in enumerate(frames):
            start = t if start is None else start
            if index % settings.frame_step == 0:
                frame_points = holistic.process(frame)
                points.append(frame_points)
                pictures.append(picture_stats(frame))
                if keep_video:
                    kept.append(frame)
                if show is not None and not show(frame, frame_points, f"{sign} {number}: recording"):
                    return None
            last = t
            if t - start >= seconds - 1e-6 - (1.0 / fps if fps else 0.0):
                break
        else:
            if start is None or last - start < 0.5 * seconds:
                return None  # the source ended: a half take is not a take
    array = np.stack(points)
    length = len(array) * settings.frame_step / fps if fps else last - start
    take = Take(sign, number, array, pictures, length, fps / settings.frame_step if fps else 0.0, kept)
    take.hints = check_take(array, pictures, length, uses_face=uses_face)
    return take


def countdown(frames: Iterator[tuple[float, np.ndarray]], seconds: float, text: str, show: Show | None) -> bool:
    """Let `seconds` of a live source go by, counting down on screen; False if the person asked to stop."""
    start: float | None = None
    for t, frame in frames:
        start = t if start is None else start
        left = seconds - (t - start)
        if left <= 0:
            return True
        if show is not None and not show(frame, None, f"{text} in {int(np.ceil(left))}"):
            return False
    return True


def record(source: FrameSource, out: str | os.PathLike, signs: Sequence[str], takes: int,
           settings: ExtractSettings = ExtractSettings(), seconds: float = 3.0, countdown_s: float = 3.0,
           uses_face: bool = True, keep_video: bool = False, retries: int = 2, signer: str | None = None,
           review: Review = headless_review, show: Show | None = None,
           progress: Callable[[str], None] | None = None) -> Report:
    """Record the missing takes of `signs` into the dataset folder `out`. A take the review rejects is retaken
    up to `retries` times, then skipped with its hints as the reason."""
    signs = check_signs(signs)
    session = Session(out, settings, signer)
    report = Report()
    say = progress or (lambda _line: None)
    frames = _frames(source)
    todo = session.todo(signs, takes)
    for position, (sign, number) in enumerate(todo):
        rel = f"{sign}/{number:02d}"
        for attempt in range(retries + 1):
            if source.live and countdown_s > 0 and not countdown(frames, countdown_s, f"{sign} {number}", show):
                report.stopped = "stopped by the user"
                break
            take = record_take(frames, sign, number, settings, seconds, source.fps, uses_face, keep_video, show)
            if take is None:
                report.stopped = report.stopped or ("stopped by the user" if source.live else "the video ended")
                break
            reasons = [h.hint for h in take.hints]
            decision = review(take, retries - attempt)
            if decision == "quit":
                report.stopped = "stopped by the user"
                break
            if decision == "keep":
                session.save(take, keep_video)
                report.kept.append(rel)
                say(f"{rel}: kept" + (f" ({'; '.join(reasons)})" if reasons else ""))
                break
            report.redone.setdefault(rel, []).append(reasons)
            if attempt == retries:
                report.skipped[rel] = reasons
                say(f"{rel}: skipped after {retries + 1} tries: {' '.join(reasons)}")
            else:
                say(f"{rel}: redo: {' '.join(reasons) or 'asked for'}")
        if report.stopped:
            report.missing = [f"{s}/{n:02d}" for s, n in todo[position:] if f"{s}/{n:02d}" not in report.skipped]
            break
    return report


class Window:
    """The recording window: frames with skeleton and status, and keys to keep (k, space, Enter), redo (r) or
    quit (q, Esc) a take."""

    TITLE = "signrec record"

    def show(self, frame: np.ndarray, frame_points: np.ndarray | None, text: str) -> bool:
        image = frame.copy()
        h, w = image.shape[:2]
        if frame_points is not None:
            draw_skeleton(image, frame_points, View(0.0, 0.0, 1.0, w, h, unit=(float(w), float(h))))
        self._caption(image, [text])
        cv2.imshow(self.TITLE, image)
        return cv2.waitKey(1) & 0xFF not in (ord("q"), 27)

    def review(self, take: Take, attempts_left: int) -> str:
        """Replay the take as a skeleton with its hints until a key decides."""
        lines = [f"{take.rel}: " + ("looks good" if not take.hints else "check:")]
        lines += [h.hint for h in take.hints] + ["k / space: keep   r: redo   q: quit"]
        index = 0
        while True:
            blank = np.full((360, 640, 3), 32, np.uint8)
            draw_skeleton(blank, take.landmarks[index % len(take.landmarks)],
                          View(0.0, 0.0, 1.0, 640, 360, unit=(640.0, 360.0)))
            self._caption(blank, lines)
            cv2.imshow(self.TITLE, blank)
            key = cv2.waitKey(int(1000 / (take.fps or 15))) & 0xFF
            if key in (ord("k"), ord(" "), 13):
                return "keep"
            if key == ord("r"):
                return "redo"
            if key in (ord("q"), 27):
                return "quit"
            index += 1

    @staticmethod
    def _caption(image: np.ndarray, lines: list[str]) -> None:
        for i, line in enumerate(lines):
            y = 26 + 22 * i
            cv2.putText(image, line[:90], (10, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(image, line[:90], (10, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)

    def close(self) -> None:
        cv2.destroyAllWindows()
