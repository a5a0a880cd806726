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

import argparse
import functools
import hashlib
import json
import os
import sys
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from signrec import SignrecError, __version__, cli, landmarks
from signrec.dataset import Sample, read_labels, write_labels
from signrec.files import write_json
from signrec.sources import VIDEO_EXTENSIONS, SourceError, open_source, prefetch

# Quieten MediaPipe's C++ logging (inherited by the worker processes).
os.environ.setdefault("GLOG_minloglevel", "2")

MANIFEST = "manifest.json"
HAND_MODELS = {"lite": 0, "full": 1}
"""Hand landmark models in the wheel, by their index in MediaPipe's model switch."""
MODEL_FIELDS = ("face", "hand_model")
"""Settings that change the landmarks themselves: a model records them and is fed landmarks made the same way."""
HOLISTIC_GRAPH = "modules/holistic_landmark/holistic_landmark_cpu.binarypb"
LABELS = "labels.csv"


class ExtractError(SignrecError):
    """A video that could not be turned into landmarks, with the file named."""


@dataclass(frozen=True)
class ExtractSettings:
    """How videos become landmarks. Saved in every manifest; a resumed run must use the same."""

    max_side: int = 640
    """Frames whose longer side exceeds this are downscaled before inference (0 = never)."""
    frame_step: int = 1
    """Keep every n-th frame (2 halves the work and the frame rate)."""
    model_complexity: int = 1
    """MediaPipe pose model size. Only 1 ships inside the mediapipe wheel, so only 1 works offline."""
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    face: bool = True
    """Run the face model. Off, the 468 face points are NaN and a frame takes about 4 ms less (of ~45 ms on
    one core); for models trained without the face, such as the fast live set-up in the README."""
    hand_model: str = "full"
    """MediaPipe's hand landmark model, both in the wheel: "full", or "lite" (about 7 ms a frame less on one
    core; points move by about 0.5 % of the image). A model must be fed the landmarks it was trained on."""

    def __post_init__(self) -> None:
        if not isinstance(self.face, bool):
            raise SignrecError(f"face must be true or false, got {self.face!r}")
        if self.hand_model not in HAND_MODELS:
            raise SignrecError(f"hand_model must be one of {', '.join(HAND_MODELS)}, got {self.hand_model!r}")
        if self.frame_step < 1:
            raise SignrecError(f"frame_step must be >= 1, got {self.frame_step}")
        if self.max_side < 0:
            raise SignrecError(f"max_side must be >= 0, got {self.max_side}")
        if self.model_complexity != 1:
            raise SignrecError("model_complexity must be 1: the other pose models are not in the mediapipe "
                               "wheel and would be downloaded at run time")


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


@dataclass
class Job:
    source: Path
    output: Path
    rel: str
    sample: Sample | None = None


@dataclass
class Report:
    """What a batch run did. `failed` maps a video (its key in the manifest) to the reason, which begins with
    the video's path as given or absolute; `warnings` maps that path to its notes (e.g. no person found).
    `frames` counts the frames run through Holistic (after frame_step)."""

    out_dir: Path
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    frames: int = 0
    seconds: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "extracted": len(self.done), "skipped": len(self.skipped),
                "failed": self.failed, "warnings": self.warnings, "frames": self.frames,
                "seconds": round(self.seconds, 2), "frames_per_second": round(self.fps, 1),
                "labels": str(self.out_dir / LABELS) if (self.out_dir / LABELS).exists() else None,
                "manifest": str(self.out_dir / MANIFEST)}


def plan_jobs(input_path: str | os.PathLike, out_dir: str | os.PathLike) -> list[Job]:
    """Videos to extract and where each output goes (mirroring the input's relative paths)."""
    input_path, out_dir = Path(input_path), Path(out_dir)
    if input_path.is_file() and input_path.suffix.lower() == ".csv":
        samples = read_labels(input_path)
        # outputs mirror the paths relative to the CSV's folder, or to the videos' common folder when
        # the CSV points outside its own (so that clips with the same name never collide)
        base = input_path.parent.resolve()
        if not all(s.path.is_relative_to(base) for s in samples):
            base = Path(os.path.commonpath([s.path.parent for s in samples]))
        jobs = []
        for sample in samples:
            rel = sample.path.relative_to(base)
            jobs.append(Job(sample.path, out_dir / rel.with_suffix(".npy"), rel.as_posix(), sample))
        return jobs
    if input_path.is_dir():
        videos = sorted(p for p in input_path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
        if not videos:
            raise ExtractError(f"{input_path}: no video files ({', '.join(VIDEO_EXTENSIONS)}) found")
        jobs = []
        for video in videos:
            rel = video.relative_to(input_path)
            label = rel.parent.name or None  # videos/<label>/clip.mp4 is labelled by its folder
            sample = Sample(video.resolve(), label) if label else None
            jobs.append(Job(video, out_dir / rel.with_suffix(".npy"), rel.as_posix(), sample))
        return jobs
    if input_path.exists():
        return [Job(input_path, out_dir / (input_path.stem + ".npy"), input_path.name)]
    raise ExtractError(f"{input_path}: no such file or folder")


def _work(source: str, output: str, settings: ExtractSettings) -> dict[str, Any]:
    """Runs in a worker process; never raises, so one bad video can not stop the batch. An error begins with
    the video's path, once: the reports print it as it is."""
    try:
        array, info = extract_video(source, settings)
        landmarks.save(output, array)
        return {"status": "ok", **info}
    except SignrecError as exc:
        error = str(exc)
    except Exception as exc:  # a decoder or MediaPipe crash on one file is reported, not fatal
        error = f"{type(exc).__name__}: {exc}"
    return {"status": "failed", "error": error if error.startswith(f"{source}: ") else f"{source}: {error}"}


def _worker_init() -> None:
    """One OpenCV thread a worker (the workers already fill the cores); MediaPipe's C++ chatter on
    stderr is dropped: every failure comes back to the parent in the job's result instead."""
    cv2.setNumThreads(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)


def _prepare_out_dir(out_dir: Path) -> None:
    """Create the output folder before any video is read: a bad --out is one clear error, not a failure
    per video and a traceback at the end."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ExtractError(f"{out_dir}: exists and is not a folder; choose another --out")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExtractError(f"{out_dir}: can not create the output folder ({exc.strerror})") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise ExtractError(f"{out_dir}: the output folder is not writable")


def _load_manifest(out_dir: Path, settings: ExtractSettings, overwrite: bool) -> dict[str, Any]:
    path = out_dir / MANIFEST
    fresh = {"extractor": {"signrec": __version__, "mediapipe": _mediapipe_version(), "settings": asdict(settings)},
             "videos": {}}
    if not path.exists() or overwrite:
        return fresh
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return fresh
    old = manifest.get("extractor", {}).get("settings")
    if isinstance(old, dict):  # fields added since that run take their defaults, which it used
        old = {**asdict(ExtractSettings()), **old}
    if old != asdict(settings):
        raise ExtractError(f"{out_dir} was extracted with other settings {old}; now {asdict(settings)}. "
                           "Use --overwrite, or another --out.")
    manifest["extractor"] = fresh["extractor"]
    return manifest


def _mediapipe_version() -> str:
    from importlib.metadata import version

    return version("mediapipe")


ENGINES = ("local", "ray")
"""Where a batch runs: this machine's process pool, or a Ray cluster (ray_engine.py)."""


def extract_dataset(input_path: str | os.PathLike, out_dir: str | os.PathLike,
                    settings: ExtractSettings = ExtractSettings(), workers: int | None = None,
                    overwrite: bool = False, progress: bool = True, engine: str = "local",
                    address: str | None = None) -> Report:
    """Extract every video under `input_path` (file, folder or labels.csv) into `out_dir`.

    `engine` "ray" runs the videos on Ray actors (`address`: the cluster, None for a local one) under the same
    contract: the same manifest, resumable, failures reported per video, the same landmarks."""
    from tqdm import tqdm

    if engine not in ENGINES:
        raise ExtractError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")

    out_dir = Path(out_dir)
    jobs = plan_jobs(input_path, out_dir)
    _prepare_out_dir(out_dir)
    manifest = _load_manifest(out_dir, settings, overwrite)
    report = Report(out_dir)
    todo: list[Job] = []
    for job in jobs:
        if not job.source.is_file():
            report.failed[job.rel] = f"{job.source}: no such file"
            manifest["videos"][job.rel] = {"status": "failed", "error": report.failed[job.rel]}
            if progress:
                print(f"FAILED {report.failed[job.rel]}", file=sys.stderr)
        elif job.output.exists() and not overwrite:
            report.skipped.append(job.rel)
            if manifest["videos"].get(job.rel, {}).get("status") != "ok":  # finished just before a kill
                array = landmarks.load(job.output)
                manifest["videos"][job.rel] = {"status": "ok", "frames": len(array),
                                               "detection_rate": landmarks.presence(array)}
        else:
            todo.append(job)
    _remove_stale_parts(out_dir)
    start = time.perf_counter()
    bar = tqdm(total=len(todo), unit="video", desc="extract", dynamic_ncols=True,
               disable=True if not progress or not todo else None)  # None: no bar unless stderr is a terminal

    def record(job: Job, info: dict[str, Any]) -> None:
        manifest["videos"][job.rel] = info
        if info["status"] == "ok":
            report.done.append(job.rel)
            report.frames += info["frames"]
            if info["warnings"]:
                report.warnings[str(job.source)] = info["warnings"]  # named as failures are: by the video
        else:
            report.failed[job.rel] = info["error"]
            if progress:  # as it happens, above the bar; the summary lists every failure again at the end
                tqdm.write(f"FAILED {info['error']}", file=sys.stderr)
        bar.update(1)
        bar.set_postfix(frames_per_s=f"{report.frames / (time.perf_counter() - start):.0f}", failed=len(report.failed))

    try:
        if engine == "ray" and todo:
            from signrec.ray_engine import run_on_ray

            run_on_ray(todo, settings, record, lambda: write_json(out_dir / MANIFEST, manifest), address, workers)
        else:
            _run_local(todo, settings, record, out_dir, manifest, workers)
    finally:  # also when the cluster went away: what finished is in the manifest, and a rerun resumes
        bar.close()
        write_json(out_dir / MANIFEST, manifest)
    report.seconds = time.perf_counter() - start
    _write_dataset_labels(jobs, out_dir)
    for video, notes in report.warnings.items():
        for note in notes:
            warnings.warn(f"{video}: {note}", stacklevel=2)
    return report


def _run_local(todo: list[Job], settings: ExtractSettings, record: Any, out_dir: Path, manifest: dict[str, Any],
               workers: int | None) -> None:
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    if workers == 1:  # in this process: no start-up cost, and decoding still overlaps inference
        for job in todo:
            record(job, _work(str(job.source), str(job.output), settings))
        return
    # longest first, so that no worker is left with a long video while the others have finished
    todo = sorted(todo, key=lambda job: job.source.stat().st_size, reverse=True)
    while todo:  # a crashed worker (e.g. a decoder segfault) breaks the pool: fail its jobs, go on
        todo = _run_pool(todo, workers, settings, record, out_dir, manifest)


def _run_pool(todo: list[Job], workers: int, settings: ExtractSettings, record: Any, out_dir: Path,
              manifest: dict[str, Any]) -> list[Job]:
    """Run jobs with at most two a worker in flight; return the jobs not started if the pool broke."""
    last_save = time.perf_counter()
    queue = iter(todo)
    pending: dict[Future, Job] = {}
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_worker_init) as pool:
        for job in queue:
            pending[pool.submit(_work, str(job.source), str(job.output), settings)] = job
            if len(pending) >= 2 * workers:
                break
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                job = pending.pop(future)
                try:
                    info = future.result()
                except BrokenProcessPool:
                    for lost in [job, *pending.values()]:
                        record(lost, {"status": "failed", "error": f"{lost.source}: the worker process crashed"})
                    return list(queue)
                record(job, info)
                next_job = next(queue, None)
                if next_job is not None:
                    pending[pool.submit(_work, str(next_job.source), str(next_job.output), settings)] = next_job
            if time.perf_counter() - last_save > 10:
                write_json(out_dir / MANIFEST, manifest)
                last_save = time.perf_counter()
    return []


def _remove_stale_parts(out_dir: Path) -> None:
    """Temporary files left by a killed run (never under a final name) are removed on resume."""
    if out_dir.is_dir():
        for stale in out_dir.rglob(".*.part*"):
            stale.unlink(missing_ok=True)


def _write_dataset_labels(jobs: list[Job], out_dir: Path) -> None:
    """DIR/labels.csv pointing at the finished .npy files makes the output a dataset itself."""
    rows = [Sample(job.output.resolve(), job.sample.label, job.sample.signer, job.sample.extra)
            for job in jobs if job.sample is not None and job.output.exists()]
    if rows:
        write_labels(out_dir / LABELS, rows)


def is_landmark_dataset(csv_path: Path) -> bool:
    first = read_labels(csv_path)[0]
    return first.path.suffix.lower() == ".npy"


def landmark_models(labels_csv: str | os.PathLike) -> dict[str, Any]:
    """The MODEL_FIELDS a landmark dataset was extracted with, from the manifest beside its labels.csv; the
    defaults (MediaPipe Holistic as shipped) for a dataset without one, such as one imported from another format."""
    defaults = asdict(ExtractSettings())
    try:
        manifest = json.loads((Path(labels_csv).parent / MANIFEST).read_text(encoding="utf-8"))
        made = dict(manifest["extractor"]["settings"])
    except (OSError, ValueError, KeyError, TypeError):
        made = {}
    return {name: made.get(name, defaults[name]) for name in MODEL_FIELDS}


def cache_root() -> Path:
    return Path(os.environ.get("SIGNREC_CACHE") or Path.home() / ".cache" / "signrec")


def ensure_landmarks(data: str | os.PathLike, cache_dir: str | os.PathLike | None = None,
                     workers: int | None = None, settings: ExtractSettings = ExtractSettings(),
                     progress: bool = True) -> Path:
    """The labels.csv of a landmark dataset for `data`, extracting videos once into a cache.

    `data` is a labels.csv (of videos or of landmarks) or a folder holding one or holding videos.
    """
    data = Path(data)
    if data.is_dir() and (data / LABELS).is_file():
        data = data / LABELS
    if data.is_file() and data.suffix.lower() == ".csv" and is_landmark_dataset(data):
        return data
    if not data.exists():
        raise ExtractError(f"{data}: no such dataset")
    # The landmark models enter the key only when not the defaults: caches made before they were settings stay valid.
    made = {k: v for k, v in asdict(settings).items() if k not in MODEL_FIELDS or v != getattr(ExtractSettings, k)}
    key = hashlib.sha1(f"{data.resolve()}|{sorted(made.items())}".encode()).hexdigest()[:10]
    name = (data.parent.name if data.is_file() else data.name) or "data"
    out_dir = Path(cache_dir) if cache_dir else cache_root() / "landmarks" / f"{name}-{key}"
    report = extract_dataset(data, out_dir, settings, workers, progress=progress)
    for reason in report.failed.values():
        warnings.warn(f"skipping {reason}", stacklevel=2)
    if not (out_dir / LABELS).is_file():
        raise ExtractError(f"{data}: no labelled video could be extracted")
    return out_dir / LABELS


# --- command line ------------------------------------------------------------------------------------------


def add_settings_arguments(parser: argparse.ArgumentParser, models: bool = True) -> None:
    """Extraction flags; `models=False` leaves out the landmark model choice, which a trained model fixes."""
    parser.add_argument("--max-side", type=cli.number(int, cli.NON_NEGATIVE), default=ExtractSettings.max_side,
                        help="downscale frames whose longer side is larger (0: never) [%(default)s]")
    parser.add_argument("--frame-step", type=cli.number(int, cli.AT_LEAST_ONE), default=ExtractSettings.frame_step,
                        help="keep every n-th frame [%(default)s]")
    if not models:
        return
    parser.add_argument("--no-face", dest="face", action="store_false",
                        help="skip the face model (face points NaN; ~4 ms a frame less)")
    parser.add_argument("--hand-model", choices=list(HAND_MODELS), default=ExtractSettings.hand_model,
                        help="MediaPipe hand landmark model; lite is ~7 ms a frame faster [%(default)s]")


def settings_from_args(args: argparse.Namespace) -> ExtractSettings:
    models = {name: getattr(args, name) for name in MODEL_FIELDS if hasattr(args, name)}
    return ExtractSettings(max_side=args.max_side, frame_step=args.frame_step, **models)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from signrec.cli import add_json_flag

    parser.add_argument("input", help="a video, a folder of videos (recursive) or a dataset labels.csv")
    parser.add_argument("--out", required=True,
                        help="output folder: one .npy per video, labels.csv, manifest.json")
    parser.add_argument("--workers", type=cli.number(int, cli.AT_LEAST_ONE), default=None,
                        help="processes (default: all cores; with --engine ray: actors, default one per CPU "
                             "of the cluster)")
    parser.add_argument("--engine", choices=ENGINES, default="local",
                        help="local: a process pool on this machine; ray: actors on a Ray cluster [%(default)s]")
    parser.add_argument("--address", default=None,
                        help="with --engine ray: the cluster, `auto` (this node's) or ray://host:port "
                             "(default: start a local one)")
    parser.add_argument("--overwrite", action="store_true", help="redo videos whose .npy already exists")
    add_settings_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_json_flag(parser)
    parser.epilog = "Exit status: 0 all videos extracted, 1 some failed (listed), 2 bad usage."


def run(args: argparse.Namespace) -> int:
    from signrec.cli import emit

    if args.address is not None and args.engine != "ray":
        raise ExtractError("--address needs --engine ray")
    report = extract_dataset(args.input, args.out, settings_from_args(args), args.workers, args.overwrite,
                             progress=not args.quiet and not args.json, engine=args.engine, address=args.address)
    lines = [f"extracted {len(report.done)} video(s), skipped {len(report.skipped)} already done, "
             f"failed {len(report.failed)}; {report.frames} frames in {report.seconds:.1f} s "
             f"({report.fps:.1f} frames/s) -> {report.out_dir}"]
    lines += [f"  FAILED {reason}" for reason in report.failed.values()]
    lines += [f"  warning {video}: {'; '.join(notes)}" for video, notes in report.warnings.items()]
    emit(args, report.to_dict(), "\n".join(lines))
    return 1 if report.failed else 0
