"""Video -> landmarks with MediaPipe Holistic, for one video or a whole dataset on all cores.

One Holistic graph is created per video (its tracker state must not leak between videos). The graph is the
one shipped in the mediapipe wheel, optionally without the face model or with the lite hand model
(`ExtractSettings.face`, `.hand_model`): a model records which made its training data.
Each worker process decodes frames in a thread while the graph runs, so decoding overlaps
with inference. Frames larger than `max_side` are downscaled first: landmarks are in
normalised image coordinates, so this changes them only within a small tolerance
(measured in BENCHMARKS.md) while 1080p costs about as much as 640p.

Runs are resumable: a finished `.npy` is skipped on the next run (writes are atomic, so a
killed run leaves no partial file), and `manifest.json` records every video's outcome.
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from signrec import SignrecError, landmarks
from signrec.video.settings import HAND_MODELS, ExtractSettings
from signrec.video.sources import SourceError, open_source, prefetch

# Quieten MediaPipe's C++ logging (inherited by the worker processes).
os.environ.setdefault("GLOG_minloglevel", "2")

HOLISTIC_GRAPH = "modules/holistic_landmark/holistic_landmark_cpu.binarypb"


class ExtractError(SignrecError):
    """A video that could not be turned into landmarks, with the file named."""


class HolisticExtractor:
    """MediaPipe Holistic for one video or stream: BGR frame in, (543, 3) landmarks out."""

    def __init__(self, settings: ExtractSettings = ExtractSettings(), profile_dir: Path | None = None):
        """`profile_dir`: where MediaPipe writes its per-calculator timings (benchmarks/holistic_profile.py)."""
        from mediapipe.python.solution_base import SolutionBase  # imported here: heavy, only workers need it

        self.settings = settings
        graph = holistic_graph(settings.face, settings.hand_model)
        if profile_dir is not None:
            Path(profile_dir).mkdir(parents=True, exist_ok=True)
            # MediaPipe writes the timings only with tracing on, every half second or so, each write holding the
            # time since the last: all into one file (0.binarypb), never rotated.
            graph.profiler_config.enable_profiler = True
            graph.profiler_config.trace_enabled = True
            graph.profiler_config.trace_log_path = f"{profile_dir}{os.sep}"
            graph.profiler_config.trace_log_count = 1
            graph.profiler_config.trace_log_interval_count = 1_000_000
        # What mp.solutions.holistic.Holistic passes, on a graph that may leave out the face or use lite hands.
        self._holistic = SolutionBase(
            graph_config=graph,
            side_inputs={"model_complexity": settings.model_complexity, "smooth_landmarks": True,
                         "enable_segmentation": False, "smooth_segmentation": True, "use_prev_landmarks": True,
                         **({"refine_face_landmarks": False} if settings.face else {})},
            calculator_params={
                "poselandmarkcpu__posedetectioncpu__TensorsToDetectionsCalculator.min_score_thresh":
                    settings.min_detection_confidence,
                "poselandmarkcpu__poselandmarkbyroicpu__tensorstoposelandmarksandsegmentation__"
                "ThresholdingCalculator.threshold": settings.min_tracking_confidence,
            },
            outputs=["pose_landmarks", "left_hand_landmarks", "right_hand_landmarks"]
            + (["face_landmarks"] if settings.face else []),
        )

    def process(self, frame_bgr: np.ndarray) -> np.ndarray:
        if frame_bgr is None or frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3:
            raise ExtractError(f"expected a BGR image (H, W, 3), got {getattr(frame_bgr, 'shape', None)}")
        h, w = frame_bgr.shape[:2]
        side = self.settings.max_side
        if side and max(h, w) > side:
            scale = side / max(h, w)
            frame_bgr = cv2.resize(frame_bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_LINEAR)
        rgb = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
        rgb.flags.writeable = False
        result = self._holistic.process({"image": rgb})
        out = np.full((landmarks.N_LANDMARKS, landmarks.N_CHANNELS), np.nan, dtype=np.float32)
        for name in landmarks.PARTS:
            found = getattr(result, f"{name}_landmarks", None)
            if found is not None:
                sl = landmarks.PARTS[name]
                out[sl] = [(p.x, p.y, p.z) for p in found.landmark[: sl.stop - sl.start]]
        return out

    def close(self) -> None:
        self._holistic.close()

    def __enter__(self) -> HolisticExtractor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@functools.cache
def _holistic_graph_bytes(face: bool, hand_model: str) -> bytes:
    import mediapipe as mp
    from mediapipe.framework import calculator_pb2
    from mediapipe.framework.tool import switch_container_pb2
    from mediapipe.python._framework_bindings.validated_graph_config import ValidatedGraphConfig

    config = calculator_pb2.CalculatorGraphConfig()
    config.ParseFromString((Path(mp.__file__).parent / HOLISTIC_GRAPH).read_bytes())
    if not face:  # the face model reads the first 11 pose points: drop that split and the model, and the output
        keep = [n for n in config.node if n.calculator not in ("FaceLandmarksFromPoseCpu",
                                                                "SplitNormalizedLandmarkListCalculator")]
        del config.node[:]
        config.node.extend(keep)
        streams = [s for s in config.output_stream if not s.startswith("FACE_LANDMARKS:")]
        del config.output_stream[:]
        config.output_stream.extend(streams)
        config.input_side_packet.remove("REFINE_FACE_LANDMARKS:refine_face_landmarks")
    # The hand model is chosen inside a subgraph, so expand the graph and flip that switch in both hands.
    validated = ValidatedGraphConfig()
    validated.initialize(graph_config=config)
    config = calculator_pb2.CalculatorGraphConfig.FromString(validated.binary_config)
    switches = [n for n in config.node if "handlandmarkmodelloader__switchcontainer__Switch" in n.name]
    if len(switches) != 4:
        raise ExtractError(f"unexpected MediaPipe Holistic graph: {len(switches)} hand model switches, expected 4")
    for node in switches:
        node.options.Extensions[switch_container_pb2.SwitchContainerOptions.ext].select = HAND_MODELS[hand_model]
    return config.SerializeToString()


def holistic_graph(face: bool = True, hand_model: str = "full") -> Any:
    """MediaPipe Holistic's graph as shipped in the wheel, with or without the face model and with the full or
    lite hand model (a CalculatorGraphConfig). With the defaults it computes what mp.solutions.holistic does."""
    from mediapipe.framework import calculator_pb2

    return calculator_pb2.CalculatorGraphConfig.FromString(_holistic_graph_bytes(face, hand_model))


def extract_video(path: str | os.PathLike, settings: ExtractSettings = ExtractSettings()) -> tuple[np.ndarray, dict]:
    """Landmarks (T, 543, 3) of one video and facts about it; ExtractError if it can not be read."""
    path = Path(path)
    start = time.perf_counter()
    try:
        source = open_source(path)
    except SourceError as exc:
        raise ExtractError(str(exc)) from None
    frames: list[np.ndarray] = []
    with source, HolisticExtractor(settings) as holistic:
        for index, (_t, frame) in enumerate(prefetch(iter(source))):
            if index % settings.frame_step == 0:
                frames.append(holistic.process(frame))
    if not frames:
        raise ExtractError(f"{path}: no decodable video frames (corrupt or not a video)")
    array = np.stack(frames)
    info: dict[str, Any] = {
        "frames": len(frames),
        "fps": source.fps / settings.frame_step if source.fps else None,
        "width": source.width,
        "height": source.height,
        "detection_rate": landmarks.presence(array),
        "seconds": round(time.perf_counter() - start, 3),
        "warnings": [],
    }
    decoded = len(frames) * settings.frame_step
    if source.frame_count and decoded < 0.9 * source.frame_count - settings.frame_step:
        info["warnings"].append(f"decoded only ~{decoded} of {source.frame_count} frames (truncated file?)")
    if np.isnan(array).all():
        info["warnings"].append("no person detected in any frame: all landmarks are NaN")
    return array, info


def load_or_extract(path: str | os.PathLike, settings: ExtractSettings = ExtractSettings()) -> np.ndarray:
    """A landmark `.npy` is loaded, anything else is extracted as a video."""
    if str(path).lower().endswith(".npy"):
        return landmarks.load(path)
    return extract_video(path, settings)[0]


# --- many videos -------------------------------------------------------------------------------------------


# --- command line ------------------------------------------------------------------------------------------


