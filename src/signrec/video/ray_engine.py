"""`signrec extract --engine ray`: the batch extraction on the actors of a Ray cluster, as a batch.Executor.

The contract is the local pool's, because the work is the same function (`batch.extract_job`) and the rest
(resuming, the manifest, the report, labels.csv) stays extract_dataset's: one Holistic graph per video inside an
actor, its output written atomically where the driver asked. One actor per CPU of the cluster, one video in flight
per actor: a worker killed mid-video (OOM killer, preemption) is restarted by Ray and the video retried once, and a
video that kills its worker twice is reported as failed without costing any other video its retry.

Every node must see the videos and the output folder under the same paths (shared storage) and run the same
signrec and mediapipe: the actors' versions are checked first, so that the landmarks are the pool's bit for bit.
If the cluster goes away mid-run, the run stops with that message; what finished is in the manifest and the same
command resumes from there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

from signrec import __version__
from signrec.video.batch import Executor, Job, _mediapipe_version, extract_job
from signrec.video.holistic import ExtractError
from signrec.video.settings import ExtractSettings

LOCAL_OBJECT_STORE = 100 * 2**20
"""Object store of a local cluster started here: results are small dicts, the landmarks go to files."""
LOCAL_CONFIG = {"worker_niceness": 0}
"""Ray runs its workers 15 nice levels down; on a machine shared with other work (a laptop, a workstation) that
left the actors at 0.63x the pool's speed (BENCHMARKS.md). The pool's workers run at the caller's priority: so do
these. On a cluster started with `ray start`, set RAY_worker_niceness=0 in its environment for the same."""
CLUSTER_GONE = ("the Ray cluster went away mid-run ({error}); every finished video is in the manifest: "
                "run the same command again to extract the rest")


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ExtractError("--engine ray needs Ray: pip install 'ray[client]==2.60.*' (see requirements.txt)"
                           ) from None
    return ray


class Extractor:
    """One Ray actor: extracts one video at a time; made an actor class by `ray.remote` in `ray_engine`."""

    def __init__(self) -> None:
        """One OpenCV thread (one actor per CPU already fills the cores); MediaPipe's C++ chatter on stderr dropped,
        as in the pool's workers: every failure comes back in the job's result. Ray, not this process's parent,
        decides when an actor ends."""
        import cv2

        cv2.setNumThreads(1)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)

    def versions(self) -> tuple[str, str]:
        return __version__, _mediapipe_version()

    def extract(self, source: str, output: str, settings: ExtractSettings) -> dict[str, Any]:
        return extract_job(source, output, settings)


def connect(address: str | None, workers: int | None) -> bool:
    """Join the cluster at `address`, or start a local one with `workers` CPUs (all when None). Already connected
    (e.g. `ray.init(num_cpus=2)` by the caller): use that. True when this call connected, so must disconnect."""
    ray = _ray()
    if ray.is_initialized():
        return False
    try:
        if address is None:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
                     object_store_memory=LOCAL_OBJECT_STORE, configure_logging=False, _system_config=LOCAL_CONFIG)
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ExtractError(f"can not reach the Ray cluster at {address or 'a new local cluster'}: {exc}") from None
    return True


def ray_engine(address: str | None = None, workers: int | None = None) -> Executor:
    """An Executor on the Ray cluster at `address` (None: a local one) with `workers` actors (None: one per CPU of
    the cluster; the count extract_dataset passes is this machine's, so it is not used)."""

    def run(jobs: Sequence[Job], settings: ExtractSettings, _local_workers: int) -> Iterator[tuple[Job, dict]]:
        ray = _ray()
        connected = connect(address, workers)
        try:
            yield from _run(ray, jobs, settings, workers)
        except (ray.exceptions.RaySystemError, ray.exceptions.GetTimeoutError, ConnectionError) as exc:
            raise ExtractError(CLUSTER_GONE.format(error=str(exc).splitlines()[0] or type(exc).__name__)) from None
        finally:
            if connected:
                ray.shutdown()

    return run


def _run(ray: Any, jobs: Sequence[Job], settings: ExtractSettings, workers: int | None
         ) -> Iterator[tuple[Job, dict[str, Any]]]:
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if cpus < 1:
        raise ExtractError("the Ray cluster has no CPU to run an extraction actor on")
    actor_class = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=1)(Extractor)
    actors = [actor_class.remote() for _ in range(max(1, min(workers or cpus, cpus, len(jobs))))]
    _check_versions(ray, actors)
    # longest first, so that no actor is left with a long video while the others have finished
    queue = iter(sorted(jobs, key=lambda job: os.path.getsize(job.source), reverse=True))
    pending: dict[Any, tuple[Job, Any]] = {}

    def submit(actor: Any) -> None:
        job = next(queue, None)
        if job is not None:
            pending[actor.extract.remote(str(job.source), str(job.output), settings)] = (job, actor)

    for actor in actors:
        submit(actor)
    while pending:
        finished, _ = ray.wait(list(pending), num_returns=1)
        for ref in finished:
            job, actor = pending.pop(ref)
            try:
                info = ray.get(ref)
            except ray.exceptions.ActorUnavailableError:  # its node is unreachable, not just its process gone
                raise ConnectionError("a worker's node stopped answering") from None
            except ray.exceptions.RayActorError:
                info = {"status": "failed", "error": f"{job.source}: the Ray worker died twice while extracting it "
                                                      "(killed, or out of memory)"}
            yield job, info
            submit(actor)


def _check_versions(ray: Any, actors: list[Any]) -> None:
    """Refuse workers with another signrec or mediapipe: their landmarks would differ from this machine's."""
    here = (__version__, _mediapipe_version())
    try:
        versions = ray.get([actor.versions.remote() for actor in actors])
    except ray.exceptions.RayActorError as exc:
        raise ExtractError(f"the Ray workers could not start ({str(exc).splitlines()[0]}); is signrec installed "
                           "on every node?") from None
    for found in set(versions):
        if tuple(found) != here:
            raise ExtractError(f"the Ray workers run signrec {found[0]} with mediapipe {found[1]}, this machine "
                               f"signrec {here[0]} with mediapipe {here[1]}: install the same on every node")
