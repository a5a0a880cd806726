"""Continuous signing: a stream of landmark frames -> words with start and end times.

Signs are cut out of the stream by a per-frame state machine before they are classified, because an
isolated-sign classifier only knows whole signs: it has never seen "half of Hi and the start of Eat".
A sign starts when a hand is raised (a wrist above `raise_level` shoulder widths below the shoulder
line) and ends when the hands have been lowered for `gap` seconds, or have been held still for
`max_hold` seconds (a signer who stops with raised hands). Two levels (hysteresis) stop jitter at
the threshold from chopping a sign. Each cut is classified once, as a whole; short cuts and unsure
answers are dropped and a repeated label split by a short dip is merged.

`StreamRecognizer` does this causally, frame by frame (live camera, WebSocket); `transcribe` runs the
same state machine over a whole recording and classifies all cuts in one batch.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from signrec import SignrecError
from signrec.landmarks import (
    PARTS,
    POSE_LEFT_SHOULDER,
    POSE_LEFT_WRIST,
    POSE_RIGHT_SHOULDER,
    POSE_RIGHT_WRIST,
    validate,
)
from signrec.model import unknown

if TYPE_CHECKING:
    from signrec.model.artifact import Classifier

_HAND_WRISTS = (PARTS["left_hand"].start, PARTS["right_hand"].start)
_HANDS = slice(PARTS["left_hand"].start, PARTS["right_hand"].stop)


@dataclass(frozen=True)
class StreamSettings:
    """How a stream is cut into signs. Distances are in shoulder widths, times in seconds."""

    raise_level: float = 1.5
    """A wrist less than this far below the shoulder line counts as raised: the sign starts."""
    hysteresis: float = 0.3
    """A wrist must drop this much further (below raise_level + hysteresis) to count as lowered again."""
    gap: float = 0.2
    """Hands lowered this long end the sign."""
    still_speed: float = 0.8
    """Hand speed (shoulder widths / s) under which the hands count as held still."""
    max_hold: float = 2.0
    """Hands held still (but raised) this long also end the sign."""
    min_sign: float = 0.4
    """Shorter cuts are dropped (a scratch of the nose, a tracking glitch)."""
    pad: float = 0.5
    """Context added before a cut (and after it, up to the frame that ended it) when it is classified.
    Isolated-sign training clips include rest: in MLR511 (users 01-06) a median 0.53 s before the hands
    rise and 0.40 s after they are down."""
    threshold: float | None = None
    """A cut whose best class has a lower probability is not reported as a word; None: the model's calibrated
    threshold (model.unknown.threshold)."""
    merge_gap: float = 0.5
    """The same label twice with less than this between the cuts is one word."""
    stride: int = 3
    """While signing, re-classify the sign so far every `stride` frames for the live top-3."""
    window: float = 6.0
    """Longest stretch kept for classification while signing (live top-3 and the final answer)."""
    smoothing: float = 0.5
    """Weight of the newest probabilities in the exponential moving average of the live top-3."""
    top_k: int = 3

    def __post_init__(self) -> None:
        if not 0.0 < self.smoothing <= 1.0:
            raise SignrecError(f"smoothing must be in (0, 1], got {self.smoothing}")
        if self.stride < 1 or self.top_k < 1:
            raise SignrecError("stride and top_k must be >= 1")
        for name in ("hysteresis", "gap", "max_hold", "min_sign", "pad", "merge_gap", "window", "still_speed"):
            if getattr(self, name) < 0:
                raise SignrecError(f"{name} must be >= 0, got {getattr(self, name)}")

    @classmethod
    def from_kwargs(cls, **settings: Any) -> StreamSettings:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise SignrecError(f"unknown stream setting(s) {unknown}; known: {sorted(known)}")
        return cls(**settings)


@dataclass
class _Cut:
    start: float  # first raised frame
    end: float  # last raised frame
    first: int  # frame index where the classification context begins (`pad` before `start`)
    last: int  # frame index of the last raised frame
    closed: int = -1  # frame index at which the cut was found to be over


class Segmenter:
    """The per-frame state machine that cuts signs out of a stream. Pure numpy, no model."""

    def __init__(self, settings: StreamSettings):
        self.s = settings
        self.signing = False
        self._index = -1
        self._prev: tuple[float, np.ndarray] | None = None  # (t, hand points) of the previous frame
        self._scale: float | None = None  # running shoulder width and height, for frames without pose
        self._shoulder_y: float | None = None
        self._cut: _Cut | None = None
        self._lowered_since: float | None = None
        self._still_since: float | None = None
        self._times: deque[float] = deque()  # recent frame times, to find the padded start of a cut

    def push(self, frame: np.ndarray, t: float) -> _Cut | None:
        """Take one (543, 3) frame; return a finished cut (any length) when one just ended."""
        self._index += 1
        raised_height = self._wrist_height(frame)
        speed = self._speed(frame, t)
        self._times.append(t)
        while len(self._times) > 1 and t - self._times[0] > self.s.pad + 1e-6:
            self._times.popleft()
        if not self.signing:
            # A sign starts with a moving hand; a hand still held up after `max_hold` does not restart it.
            moving = speed is None or speed >= self.s.still_speed
            if raised_height is not None and raised_height <= self.s.raise_level and moving:
                self.signing = True
                self._cut = _Cut(t, t, self._index - len(self._times) + 1, self._index)
                self._lowered_since = self._still_since = None
            return None
        assert self._cut is not None
        lowered = raised_height is None or raised_height > self.s.raise_level + self.s.hysteresis
        if lowered:
            self._lowered_since = t if self._lowered_since is None else self._lowered_since
        else:
            self._lowered_since = None
            self._cut.end, self._cut.last = t, self._index
        still = speed is not None and speed < self.s.still_speed
        self._still_since = (self._still_since if self._still_since is not None else t) if still else None
        if (self._lowered_since is not None and t - self._lowered_since >= self.s.gap) or (
                self._still_since is not None and t - self._still_since >= self.s.max_hold):
            return self.finish()
        return None

    def finish(self) -> _Cut | None:
        """End of stream: close the sign in progress, if any."""
        cut, self._cut, self.signing = self._cut, None, False
        if cut is not None:
            cut.closed = self._index
        return cut

    def _wrist_height(self, frame: np.ndarray) -> float | None:
        """Height of the higher wrist below the shoulder line, in shoulder widths (None: no hand seen)."""
        ls, rs = frame[POSE_LEFT_SHOULDER], frame[POSE_RIGHT_SHOULDER]
        if not (np.isnan(ls[0]) or np.isnan(rs[0])):
            width = float(np.hypot(ls[0] - rs[0], ls[1] - rs[1]))
            if width > 1e-4:
                self._scale = width if self._scale is None else 0.9 * self._scale + 0.1 * width
                y = float(ls[1] + rs[1]) / 2
                self._shoulder_y = y if self._shoulder_y is None else 0.9 * self._shoulder_y + 0.1 * y
        # A detected hand's own wrist is more precise than the pose estimate of it.
        wrists = [frame[h, 1] if not np.isnan(frame[h, 1]) else frame[p, 1]
                  for h, p in zip(_HAND_WRISTS, (POSE_LEFT_WRIST, POSE_RIGHT_WRIST), strict=True)]
        ys = [float(y) for y in wrists if not np.isnan(y)]
        if not ys:
            return None
        if self._scale is None or self._shoulder_y is None:  # no body seen yet: a visible hand counts as raised
            hands_seen = not np.isnan(frame[_HAND_WRISTS, 1]).all()
            return self.s.raise_level if hands_seen else None
        return (min(ys) - self._shoulder_y) / self._scale

    def _speed(self, frame: np.ndarray, t: float) -> float | None:
        """Mean speed of the hand points seen in this and the previous frame, shoulder widths per second."""
        points = frame[_HANDS, :2]
        prev, self._prev = self._prev, (t, points)
        if prev is None or self._scale is None or t <= prev[0]:
            return None
        moved = np.linalg.norm(points - prev[1], axis=-1)
        moved = moved[~np.isnan(moved)]
        if moved.size == 0:
            return None
        return float(moved.mean()) / self._scale / (t - prev[0])


def _word(labels: list[str], cut: _Cut, proba: np.ndarray) -> dict[str, Any]:
    best = int(np.argmax(proba))
    return {"label": labels[best], "start": round(cut.start, 3), "end": round(cut.end, 3),
            "confidence": round(float(proba[best]), 4)}


def _accept(words: list[dict[str, Any]], word: dict[str, Any], s: StreamSettings) -> None:
    """Append `word`, extend the previous word if it has the same label, or drop it if unsure."""
    if word["confidence"] < s.threshold:
        return
    if words and words[-1]["label"] == word["label"] and word["start"] - words[-1]["end"] < s.merge_gap:
        words[-1]["end"] = word["end"]
        words[-1]["confidence"] = max(words[-1]["confidence"], word["confidence"])
    else:
        words.append(word)


def _top(labels: list[str], proba: np.ndarray, k: int) -> list[tuple[str, float]]:
    order = np.argsort(-proba)[:k]
    return [(labels[i], round(float(proba[i]), 4)) for i in order]


class StreamRecognizer:
    """Frame by frame: push landmarks, get the live top-k, whether a sign is in progress, and the words so far."""

    def __init__(self, classifier: Classifier, fps: float, **settings: Any):
        self.classifier = classifier
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.settings = with_threshold(StreamSettings.from_kwargs(**settings), classifier)
        self.segmenter = Segmenter(self.settings)
        self.words: list[dict[str, Any]] = []
        self._labels = list(classifier.labels)
        self._frames: deque[np.ndarray] = deque()  # frames since the padded start of the cut in progress
        self._times: deque[float] = deque()
        self._smoothed: np.ndarray | None = None
        self._since_update = 0

    def push(self, frame: np.ndarray, t: float) -> dict[str, Any]:
        s = self.settings
        frame = np.asarray(frame, dtype=np.float32)
        if frame.shape != (543, 3):
            raise SignrecError(f"a stream frame must have shape (543, 3), got {frame.shape}")
        was_signing = self.segmenter.signing
        cut = self.segmenter.push(frame, t)
        self._frames.append(frame)
        self._times.append(t)
        if not was_signing and self.segmenter.signing:
            self._smoothed, self._since_update = None, s.stride - 1  # a new sign: forget the last one
        if cut is not None:
            self._close(cut)
        keep = s.window if self.segmenter.signing else s.pad  # between signs keep only the padding context
        while len(self._times) > 1 and t - self._times[0] > keep + 1e-6:
            self._times.popleft()
            self._frames.popleft()
        if cut is None and self.segmenter.signing:
            self._since_update += 1
            if self._since_update >= s.stride:
                self._since_update = 0
                self._update(self.classifier.predict_proba([np.stack(self._frames)])[0])
        return self.state()

    def finish(self) -> dict[str, Any]:
        """End of stream: classify the sign in progress, if any."""
        cut = self.segmenter.finish()
        if cut is not None:
            self._close(cut)
        return self.state()

    def state(self) -> dict[str, Any]:
        top = [] if self._smoothed is None else _top(self._labels, self._smoothed, self.settings.top_k)
        return {"top": top, "words": [dict(w) for w in self.words], "signing": self.segmenter.signing}

    def _update(self, proba: np.ndarray) -> None:
        a = self.settings.smoothing
        self._smoothed = proba if self._smoothed is None else a * proba + (1 - a) * self._smoothed

    def _close(self, cut: _Cut) -> None:
        """Classify a finished cut as a whole, padded, and report it as a word if it is long and sure enough."""
        s = self.settings
        if cut.end - cut.start < s.min_sign:
            return
        # The same frames `segments` gives transcribe: padding before, and after up to the closing frame.
        frames = [f for f, ft in zip(self._frames, self._times, strict=True)
                  if cut.start - s.pad - 1e-6 <= ft <= cut.end + s.pad + 1e-6]
        proba = self.classifier.predict_proba([np.stack(frames)])[0]
        self._smoothed = proba
        _accept(self.words, _word(self._labels, cut, proba), s)


def with_threshold(settings: StreamSettings, classifier: Classifier) -> StreamSettings:
    """`settings` with the classifier's calibrated unknown threshold where none was given."""
    if settings.threshold is not None:
        return settings
    return dataclasses.replace(settings, threshold=unknown.threshold(classifier.meta))


def segments(landmarks: np.ndarray, fps: float, **settings: Any) -> list[tuple[float, float, int, int]]:
    """Cut a whole recording into signs: (start s, end s, first frame, end frame exclusive) with padding."""
    if not (isinstance(fps, int | float) and math.isfinite(fps) and fps > 0):
        raise SignrecError(f"cutting a recording into signs needs its frame rate, got {fps}")
    s = StreamSettings.from_kwargs(**settings)
    seg = Segmenter(s)
    pad = int(round(s.pad * fps))
    cuts = [c for i, frame in enumerate(landmarks) if (c := seg.push(frame, i / fps)) is not None]
    if (last := seg.finish()) is not None:
        cuts.append(last)
    return [(c.start, c.end, max(0, c.first), min(c.closed, c.last + pad) + 1)
            for c in cuts if c.end - c.start >= s.min_sign]


def transcribe(classifier: Classifier, landmarks: np.ndarray, fps: float, **settings: Any) -> list[dict[str, Any]]:
    """A whole recording -> words [{"label", "start", "end", "confidence"}], all cuts classified in one batch."""
    landmarks = validate(landmarks)
    if not fps or fps <= 0:
        raise SignrecError(f"transcribe needs the recording's frame rate, got {fps}")
    s = with_threshold(StreamSettings.from_kwargs(**settings), classifier)
    cuts = segments(landmarks, fps, **settings)
    if not cuts:
        return []
    proba = classifier.predict_proba([landmarks[first:stop] for _s, _e, first, stop in cuts])
    labels = list(classifier.labels)
    words: list[dict[str, Any]] = []
    for (start, end, first, stop), p in zip(cuts, proba, strict=True):
        _accept(words, _word(labels, _Cut(start, end, first, stop - 1), p), s)
    return words


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    """Levenshtein distance between word sequences: substitutions + deletions + insertions."""
    prev = list(range(len(hypothesis) + 1))
    for i, r in enumerate(reference, start=1):
        cur = [i] + [0] * len(hypothesis)
        for j, h in enumerate(hypothesis, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def word_accuracy(reference: list[str], hypothesis: list[str]) -> float:
    """1 - edit distance / len(reference), the usual score for continuous recognition; can be negative."""
    if not reference:
        raise ValueError("word accuracy needs a non-empty reference")
    return 1.0 - edit_distance(reference, hypothesis) / len(reference)


