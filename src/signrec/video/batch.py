"""Many videos -> landmarks: a dataset extracted on an executor, resumable, with a manifest of every video.

Runs are resumable: a finished `.npy` is skipped on the next run (writes are atomic, so a killed run leaves no
partial file), and `manifest.json` records every video's outcome. `open_dataset` turns any dataset, of videos or
of landmarks, into a landmark store, extracting videos once into a cache.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import cv2

from signrec import SignrecError, __version__, landmarks
from signrec.files import write_json
from signrec.landmarks.dataset import VIDEO_EXTENSIONS, Sample, deduplicate, read_labels, write_labels
from signrec.landmarks.shards import ShardStore, is_store
from signrec.landmarks.store import LABELS, MANIFEST, FolderStore, LandmarkStore
from signrec.video.holistic import ExtractError, extract_video
from signrec.video.settings import MODEL_FIELDS, ExtractSettings

PR_SET_PDEATHSIG = 1
"""Linux prctl option: the signal a process gets when its parent dies."""


@dataclass
class Job:
    source: Path
    output: Path
    rel: str
    sample: Sample | None = None
    listed: int = 1
    """Rows of the labels.csv naming this video: it is extracted once, and a repeat is said."""


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


def plan_jobs(input_path: str | os.PathLike, out_dir: str | os.PathLike,
              samples: list[Sample] | None = None) -> list[Job]:
    """Videos to extract and where each output goes (mirroring the input's relative paths); `samples`: the
    input labels.csv's rows, when they were read already."""
    input_path, out_dir = Path(input_path), Path(out_dir)
    if input_path.is_file() and input_path.suffix.lower() == ".csv":
        # a video listed twice is extracted once; under two labels or signers it is refused (DatasetError)
        samples, repeats = deduplicate(read_labels(input_path) if samples is None else samples, input_path)
        # outputs mirror the paths relative to the CSV's folder, or to the videos' common folder when
        # the CSV points outside its own (so that clips with the same name never collide)
        base = input_path.parent.resolve()
        if not all(s.path.is_relative_to(base) for s in samples):
            base = Path(os.path.commonpath([s.path.parent for s in samples]))
        jobs = []
        for sample in samples:
            rel = sample.path.relative_to(base)
            jobs.append(Job(sample.path, out_dir / rel.with_suffix(".npy"), rel.as_posix(), sample,
                            repeats.get(sample.path, 1)))
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


def extract_job(source: str, output: str, settings: ExtractSettings) -> dict[str, Any]:
    """One video to its .npy; runs in a worker of any engine and never raises, so one bad video can not stop the
    batch. An error begins with
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


def _worker_init(parent: int) -> None:
    """One OpenCV thread a worker (the workers already fill the cores); MediaPipe's C++ chatter on
    stderr is dropped: every failure comes back to the parent in the job's result instead. Ctrl+C is left to the
    parent, which stops the workers at once (a worker would otherwise take the next queued video), and a worker
    dies with its parent, even one killed with SIGKILL, instead of writing on into --out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with(parent)
    cv2.setNumThreads(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)


def _die_with(parent: int) -> None:
    """Have the kernel kill this process when `parent` dies (Linux: prctl PR_SET_PDEATHSIG; elsewhere only a
    parent gone already is noticed)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # it died before the prctl
        os._exit(1)


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


def extract_dataset(input_path: str | os.PathLike, out_dir: str | os.PathLike,
                    settings: ExtractSettings = ExtractSettings(), workers: int | None = None,
                    overwrite: bool = False, progress: bool = True, executor: Executor | None = None) -> Report:
    """Extract every video under `input_path` (file, folder or labels.csv) into `out_dir` on `executor`
    (default: process_pool), with `workers` workers (default: one per core)."""
    out_dir = Path(out_dir)
    return _extract(plan_jobs(input_path, out_dir), out_dir, settings, workers, overwrite, progress,
                    executor or process_pool)


def _extract(jobs: list[Job], out_dir: Path, settings: ExtractSettings, workers: int | None, overwrite: bool,
             progress: bool, executor: Executor) -> Report:
    from tqdm import tqdm

    _prepare_out_dir(out_dir)
    manifest = _load_manifest(out_dir, settings, overwrite)
    report = Report(out_dir)
    todo: list[Job] = []
    for job in jobs:
        if job.listed > 1:
            report.warnings[str(job.source)] = [f"listed {job.listed} times in its labels.csv; extracted once"]
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
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    _remove_stale_parts(out_dir)
    start = time.perf_counter()
    bar = tqdm(total=len(todo), unit="video", desc="extract", dynamic_ncols=True,
               disable=True if not progress or not todo else None)  # None: no bar unless stderr is a terminal

    def record(job: Job, info: dict[str, Any]) -> None:
        manifest["videos"][job.rel] = info
        if info["status"] == "ok":
            report.done.append(job.rel)
            report.frames += info["frames"]
            if info["warnings"]:  # named as failures are: by the video
                report.warnings.setdefault(str(job.source), []).extend(info["warnings"])
        else:
            report.failed[job.rel] = info["error"]
            if progress:  # as it happens, above the bar; the summary lists every failure again at the end
                tqdm.write(f"FAILED {info['error']}", file=sys.stderr)
        bar.update(1)
        bar.set_postfix(frames_per_s=f"{report.frames / (time.perf_counter() - start):.0f}", failed=len(report.failed))

    last_save = time.perf_counter()
    runs = executor(todo, settings, workers)
    try:
        for job, info in runs:
            record(job, info)
            if time.perf_counter() - last_save > 10:  # a killed run keeps what finished before
                write_json(out_dir / MANIFEST, manifest)
                last_save = time.perf_counter()
    except KeyboardInterrupt:  # what finished is kept, with its whole manifest entry; a rerun does the rest
        close = getattr(runs, "close", None)
        if close is not None:
            close()  # the engine stops its workers at once
        _remove_stale_parts(out_dir)
        _write_dataset_labels(jobs, out_dir)
        raise
    finally:  # also when the executor gave up (a cluster gone): what finished is recorded, and a rerun resumes
        bar.close()
        write_json(out_dir / MANIFEST, manifest)
    report.seconds = time.perf_counter() - start
    _write_dataset_labels(jobs, out_dir)
    return report


Executor = Callable[[Sequence[Job], ExtractSettings, int], Iterator[tuple[Job, dict[str, Any]]]]
"""Runs extraction jobs on `workers` workers and yields (job, outcome) as each finishes, the outcome being what
`extract_job` returns. The seam for other engines (a cluster): resuming, the manifest, the report and the
dataset's labels.csv stay extract_dataset's, so every engine keeps the same contract."""


def process_pool(jobs: Sequence[Job], settings: ExtractSettings, workers: int) -> Iterator[tuple[Job, dict[str, Any]]]:
    """The local engine: one process per worker (in this process for one: no start-up cost, and decoding still
    overlaps inference). A crashed worker (e.g. a decoder segfault) breaks the pool: its jobs fail, the rest go on
    in a new pool."""
    if workers == 1:
        for job in jobs:
            yield job, extract_job(str(job.source), str(job.output), settings)
        return
    # longest first, so that no worker is left with a long video while the others have finished
    todo = sorted(jobs, key=lambda job: job.source.stat().st_size, reverse=True)
    while todo:
        todo = yield from _run_pool(todo, workers, settings)


def _run_pool(todo: list[Job], workers: int, settings: ExtractSettings,
              ) -> Generator[tuple[Job, dict[str, Any]], None, list[Job]]:
    """Run jobs with at most two a worker in flight; return the jobs not started if the pool broke."""
    queue = iter(todo)
    pending: dict[Future, Job] = {}
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_worker_init,
                             initargs=(os.getpid(),)) as pool:
        try:
            for job in queue:
                pending[pool.submit(extract_job, str(job.source), str(job.output), settings)] = job
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
                            yield lost, {"status": "failed", "error": f"{lost.source}: the worker process crashed"}
                        return list(queue)
                    yield job, info
                    next_job = next(queue, None)
                    if next_job is not None:
                        pending[pool.submit(extract_job, str(next_job.source), str(next_job.output),
                                            settings)] = next_job
        except KeyboardInterrupt:  # Ctrl+C while waiting: the videos that finished are handed over first
            yield from _stop_pool(pool, pending)
            raise
        except GeneratorExit:  # the caller stopped (Ctrl+C on its side): no waiting for the workers either
            _stop_pool(pool, pending)
            raise
    return []


def _stop_pool(pool: ProcessPoolExecutor, pending: dict[Future, Job]) -> list[tuple[Job, dict[str, Any]]]:
    """Kill the workers in the middle of their videos and drop the queue, at once (leaving the `with` would wait
    for them, and start queued videos); returns the videos that had finished."""
    finished = [(job, future.result()) for future, job in pending.items()
                if future.done() and not future.cancelled() and future.exception() is None]
    workers = list((pool._processes or {}).values())  # no public way to reach them
    for process in workers:
        process.terminate()
    for process in workers:
        process.join(timeout=5)
    pool.shutdown(wait=False, cancel_futures=True)
    return finished


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


def cache_root() -> Path:
    return Path(os.environ.get("SIGNREC_CACHE") or Path.home() / ".cache" / "signrec")


def open_store(data: str | os.PathLike, settings: ExtractSettings = ExtractSettings(), progress: bool = True
               ) -> LandmarkStore:
    """Any dataset a command takes: a shard store (a folder or fsspec URL with a store.json) opened to be streamed,
    anything else opened by `open_dataset`."""
    if is_store(data):
        return ShardStore(data)
    return open_dataset(data, settings, progress=progress)


def open_dataset(data: str | os.PathLike, settings: ExtractSettings = ExtractSettings(), workers: int | None = None,
                 cache_dir: str | os.PathLike | None = None, progress: bool = True) -> FolderStore:
    """`data` as a landmark store, read once: a landmark dataset as it is; a dataset of videos extracted (with
    `settings`) once into a cache, each sample remembering its video.

    `data` is a labels.csv (of videos or of landmarks) or a folder holding one or holding `<label>/<clip>` videos.
    Videos that fail are left out, each reason in the store's `failed` for the caller to report, and the notes of
    extraction (no person found, a repeated row) in its `notes`; none extracted is an ExtractError.
    """
    data = Path(data)
    if data.is_dir() and (data / LABELS).is_file():
        data = data / LABELS
    if not data.exists():
        raise ExtractError(f"{data}: no such dataset")
    samples = read_labels(data) if data.is_file() and data.suffix.lower() == ".csv" else None
    if samples is not None and samples[0].path.suffix.lower() == ".npy":  # landmarks already
        return FolderStore.open(data, samples=samples)
    # The landmark models enter the key only when not the defaults: caches made before they were settings stay valid.
    made = {k: v for k, v in asdict(settings).items() if k not in MODEL_FIELDS or v != getattr(ExtractSettings, k)}
    key = hashlib.sha1(f"{data.resolve()}|{sorted(made.items())}".encode()).hexdigest()[:10]
    name = (data.parent.name if data.is_file() else data.name) or "data"
    out_dir = Path(cache_dir) if cache_dir else cache_root() / "landmarks" / f"{name}-{key}"
    jobs = plan_jobs(data, out_dir, samples)
    report = _extract(jobs, out_dir, settings, workers, False, progress, process_pool)
    if not (out_dir / LABELS).is_file():
        raise ExtractError(f"{data}: no labelled video could be extracted" + "".join(
            f"; {reason}" for reason in list(report.failed.values())[:1]))
    return FolderStore.open(out_dir / LABELS, {str(job.output.resolve()): str(job.source) for job in jobs},
                            failed=list(report.failed.values()),
                            notes=[f"{video}: {note}" for video, notes in report.warnings.items() for note in notes])
