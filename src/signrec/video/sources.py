"""Frame sources: a video file, a camera or a network stream behind one protocol.

Live code reads frames from a FrameSource, so it is tested with video files instead of a camera.
"""

from __future__ import annotations

import os
import queue
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from signrec import SignrecError
from signrec.video.containers import HEAD_BYTES, refusal


class SourceError(SignrecError):
    """A video, camera or stream that can not be opened or read."""


class FrameSource(Protocol):
    fps: float
    """Nominal frames per second; 0.0 if the source does not say."""
    live: bool
    """True for cameras and streams: frames arrive in real time and do not wait for a slow reader."""

    def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
        """Yield (timestamp in seconds, BGR uint8 frame)."""
        ...

    def close(self) -> None: ...


def open_video_file(path: str | os.PathLike) -> cv2.VideoCapture:
    """An opened capture of a video file, checked before FFmpeg reads a byte; SourceError names the file.

    FFmpeg follows what a file says and what its name looks like: an HLS playlist or a concat list makes it read
    the files they name, and a name such as `frame%d.jpg` makes it read frame1.jpg, frame2.jpg, ... So the file
    must start like a video container (signrec.containers), and FFmpeg opens it as /proc/self/fd/N, a name with
    no protocol, pattern or extension in it, of the very file whose bytes were checked. (FFmpeg's own
    protocol_whitelist and format_whitelist can not be set: OpenCV 4.11 ignores OPENCV_FFMPEG_CAPTURE_OPTIONS.)
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise SourceError(f"{path}: no such video file") from None
    except OSError as exc:
        raise SourceError(f"{path}: can not read ({exc.strerror})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SourceError(f"{path}: not a file")
        head = os.pread(fd, HEAD_BYTES, 0)
        if not head:
            raise SourceError(f"{path}: empty file (0 bytes)")
        if why := refusal(head):
            raise SourceError(f"{path}: {why}")
        cap = cv2.VideoCapture(_fd_name(fd, path), cv2.CAP_FFMPEG)  # FFmpeg only: no image-sequence reader
        if not cap.isOpened():
            raise SourceError(f"{path}: can not open as a video: the file exists ({os.fstat(fd).st_size} bytes) "
                              "but OpenCV can not decode it as video")
        return cap
    finally:
        os.close(fd)  # FFmpeg holds its own


def _fd_name(fd: int, path: Path) -> str:
    """A name by which FFmpeg opens the file behind `fd`. Without /proc or /dev/fd, the absolute path, refused
    where FFmpeg would read it as a pattern of many files."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        if os.path.isdir(folder):
            return f"{folder}/{fd}"
    if any(c in path.name for c in "%*?[{"):
        raise SourceError(f"{path}: rename it without % * ? [ {{ (FFmpeg would read those as a file pattern)")
    return str(path.absolute())


class CaptureSource:
    """Any OpenCV capture. Files are timed by frame index, cameras and streams by the clock."""

    def __init__(self, spec: str | int, live: bool):
        self.spec = spec
        self.live = live
        self._cap = cv2.VideoCapture(spec) if live else open_video_file(spec)
        if not self._cap.isOpened():
            if isinstance(spec, int):
                raise SourceError(f"camera {spec}: can not open (not connected, in use by another program, "
                                  "or no permission)")
            raise SourceError(f"{spec}: can not open as a stream (unreachable, or not a stream OpenCV can "
                              "decode)")
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not (0.0 < self.fps < 1000.0):
            self.fps = 0.0
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.frame_count = max(0, int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT)))

    def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
        start = time.monotonic()
        index = 0
        while True:
            ok, frame = self._cap.read()
            if not ok or frame is None:
                return
            t = time.monotonic() - start if self.live or not self.fps else index / self.fps
            index += 1
            yield t, frame

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> CaptureSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_source(spec: str | int | os.PathLike) -> CaptureSource:
    """Camera index (int or digit string), stream URL (rtsp/http/https/udp), or video file path.

    A path object is always a file (open_video_file checks it); only a string can name a camera or a stream,
    so a file's name never turns it into one."""
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        return CaptureSource(int(spec), live=True)
    if isinstance(spec, str) and "://" in spec:
        return CaptureSource(spec, live=True)
    return CaptureSource(str(spec), live=False)


def prefetch(frames: Iterator[tuple[float, np.ndarray]], depth: int = 8) -> Iterator[tuple[float, np.ndarray]]:
    """Decode ahead in a thread so that decoding overlaps with inference (OpenCV releases the GIL)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def reader() -> None:
        try:
            for item in frames:
                if not put(item):
                    return
        except Exception as exc:  # surfaced in the consumer
            put(exc)
        put(done)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


class Latest:
    """Iterate over a live source's newest frame only.

    A camera buffers frames while the consumer is busy; read in order, each frame would then be older than
    the last. Here a thread reads the source as fast as it delivers and keeps only the newest frame, so a
    consumer slower than the camera always gets the frame captured last; the others are counted in
    `dropped`. For files, where every frame counts, use `prefetch` instead.
    """

    _END = object()

    def __init__(self, frames: Iterator[tuple[float, np.ndarray]]):
        self.dropped = 0
        self._frames = frames
        self._slot: list = []  # the newest (t, frame) not yet taken, then maybe an exception or _END
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for item in self._frames:
                if self._stop.is_set():
                    return
                self._put(item)
        except Exception as exc:  # surfaced in the consumer
            self._put(exc)
        self._put(self._END)

    def _put(self, item: object) -> None:
        with self._ready:
            if item is self._END or isinstance(item, Exception):
                self._slot.append(item)  # after the last frame, which still gets used
            else:
                self.dropped += len(self._slot)  # only frames wait here before the end
                self._slot[:] = [item]
            self._ready.notify()

    def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
        try:
            while True:
                with self._ready:
                    self._ready.wait_for(lambda: bool(self._slot))
                    item = self._slot.pop(0)
                if item is self._END:
                    return
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:  # the reader stops at its next frame, before anyone releases the source under it
            self._stop.set()
            self._thread.join(timeout=2)
