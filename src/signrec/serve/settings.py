"""The limits and access rules of one server: frozen, so a running app's rules never change under it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from signrec import SignrecError, ranges
from signrec.video.settings import ExtractSettings

API_KEY_HEADER = "X-API-Key"


WS_HARD_CAP = 4
"""uvicorn reads WebSocket messages up to this many times --max-upload-mb, so the app can answer 413 to those
over the limit and go on; a larger message ends the stream (1009), since reading it would cost its size in memory."""


PORTS: ranges.Range = (lambda v: 1 <= v <= 65535, "between 1 and 65535")


@dataclass(frozen=True)
class ServerSettings:
    """Limits and access rules of one server. Frozen: a running app's rules do not change under it."""

    api_key: str | None = None
    """Required in the X-API-Key header (or `api_key` query parameter on the WebSocket); None = open."""
    cors_origins: tuple[str, ...] = ()
    """Origins allowed to call the API from a browser page on another site ("*" = any)."""
    max_upload_mb: float = 20.0
    """Largest request body (video or JSON) and WebSocket message."""
    max_duration_s: float = 20.0
    """Longest video or landmark sequence accepted."""
    max_fps: float = 30.0
    """Uploaded videos above this rate are subsampled; a stream's image frames are dropped (429) when the server
    takes them off the connection faster than this (see docs/server.md: a backlog queues, it is not dropped)."""
    top_k: int = 3
    workers: int = 2
    """Videos extracted at the same time (each runs one MediaPipe Holistic)."""
    max_queue: int = 8
    """Video requests waiting or running before new ones get 429."""
    max_streams: int = 4
    """Concurrent WebSocket streams (each holds one Holistic)."""
    models_dir: str | None = None
    """Where POST /v1/enroll writes personal models (None: `personal/` beside the served model's folder)."""
    max_enroll_mb: float = 200.0
    """Largest enrollment upload once unpacked (a zip's entries together)."""
    extract: ExtractSettings = field(default_factory=ExtractSettings)

    def __post_init__(self) -> None:
        for name in ("max_upload_mb", "max_duration_s", "max_fps", "max_enroll_mb"):
            if not getattr(self, name) > 0:
                raise SignrecError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("top_k", "workers", "max_queue", "max_streams"):
            if getattr(self, name) < 1:
                raise SignrecError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_enroll_bytes(self) -> int:
        return int(self.max_enroll_mb * 1024 * 1024)

    @property
    def ws_max_bytes(self) -> int:
        return WS_HARD_CAP * self.max_upload_bytes

    @property
    def max_frames(self) -> int:
        return math.ceil(self.max_duration_s * self.max_fps)

    def summary(self) -> str:
        """The limits in words, for the console at startup."""
        return (f"upload {self.max_upload_mb:g} MB, duration {self.max_duration_s:g} s, {self.max_fps:g} fps "
                f"({self.max_frames} frames), {self.workers} videos at once (queue {self.max_queue}), "
                f"max streams {self.max_streams}, top {self.top_k}, API key {'required' if self.api_key else 'not required'}")

    def public(self) -> dict[str, Any]:
        """The limits a client may see (never the key)."""
        return {"max_upload_mb": self.max_upload_mb, "max_duration_s": self.max_duration_s,
                "max_fps": self.max_fps, "max_frames": self.max_frames, "top_k": self.top_k,
                "max_streams": self.max_streams, "max_enroll_mb": self.max_enroll_mb,
                "api_key_required": self.api_key is not None}
