"""`signrec extract --engine ray` on a local Ray cluster (2 CPUs), against the local engine, on real MLR511 clips."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from signrec.cli import main
from signrec.landmarks.dataset import Sample, read_labels, write_labels
from signrec.video.batch import extract_dataset
from signrec.video.holistic import ExtractError
from signrec.video.ray_engine import LOCAL_CONFIG, ray_engine
from signrec.video.settings import ExtractSettings

ray = pytest.importorskip("ray")
SETTINGS = ExtractSettings(frame_step=3)  # fewer frames: the same code path, a third of the time


@pytest.fixture(scope="module")
def local_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=100 * 2**20,
             _system_config=LOCAL_CONFIG)
    yield
    ray.shutdown()


def clips(shared_data: Path, tmp_path: Path, n: int, signer: str = "user05") -> Path:
    samples = [s for s in read_labels(shared_data / "mlr511_arsl" / "labels.csv") if s.signer == signer][:n]
    write_labels(tmp_path / "labels.csv", samples)
    return tmp_path / "labels.csv"


def outputs(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.npy"))}


def test_same_contract_and_landmarks_as_the_local_engine(local_cluster, shared_data, tmp_path, capsys):
    csv_path = clips(shared_data, tmp_path, 3)
    rows = read_labels(csv_path)
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    rows += [Sample(tmp_path / "broken.mp4", "Hi", "user05"), Sample(tmp_path / "missing.mp4", "Hi", "user05")]
    write_labels(csv_path, rows)
    local = extract_dataset(csv_path, tmp_path / "local", SETTINGS, workers=1, progress=False)

    out = tmp_path / "ray"
    status = main(["extract", str(csv_path), "--out", str(out), "--engine", "ray", "--frame-step", "3", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert status == 1 and report["extracted"] == 3 and sorted(report["failed"]) == sorted(local.failed)
    assert all(reason.startswith(str(tmp_path)) for reason in report["failed"].values())
    assert outputs(out) == outputs(tmp_path / "local")  # bit for bit
    ray_manifest = json.loads((out / "manifest.json").read_text())
    local_manifest = json.loads((tmp_path / "local" / "manifest.json").read_text())
    assert ray_manifest["extractor"] == local_manifest["extractor"]
    for key, info in local_manifest["videos"].items():
        assert {k: v for k, v in ray_manifest["videos"][key].items() if k != "seconds"} == \
            {k: v for k, v in info.items() if k != "seconds"}
    assert (out / "labels.csv").read_text().splitlines()[1:] == \
        (tmp_path / "local" / "labels.csv").read_text().splitlines()[1:]

    next(out.rglob("*.npy")).unlink()  # resumable: only what is missing is redone
    again = extract_dataset(csv_path, out, SETTINGS, progress=False, executor=ray_engine())
    assert len(again.done) == 1 and len(again.skipped) == 2 and outputs(out) == outputs(tmp_path / "local")


def test_a_worker_killed_mid_video_is_retried(local_cluster, shared_data, tmp_path):
    csv_path = clips(shared_data, tmp_path, 4, signer="user06")
    killed: list[int] = []

    def kill_one_busy_actor() -> None:
        deadline = time.monotonic() + 120
        while not killed and time.monotonic() < deadline:
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    busy = cmdline.read_bytes().startswith(b"ray::Extractor.extract")
                except OSError:
                    continue
                if busy:
                    time.sleep(0.3)  # into the video
                    os.kill(int(cmdline.parent.name), signal.SIGKILL)
                    killed.append(int(cmdline.parent.name))
                    return
            time.sleep(0.1)

    killer = threading.Thread(target=kill_one_busy_actor, daemon=True)
    killer.start()
    report = extract_dataset(csv_path, tmp_path / "out", SETTINGS, progress=False, executor=ray_engine())
    killer.join()
    assert killed, "no busy extraction actor was found to kill"
    assert not report.failed and len(report.done) == 4
    assert not list((tmp_path / "out").rglob(".*.part*"))  # the killed attempt left no partial file behind
    local = extract_dataset(csv_path, tmp_path / "local", SETTINGS, workers=1, progress=False)
    assert outputs(tmp_path / "out") == outputs(tmp_path / "local") and len(local.done) == 4


def test_the_cluster_gone_mid_run_is_named_and_a_rerun_resumes(shared_data, tmp_path):
    if ray.is_initialized():
        ray.shutdown()
    ray_cli = str(Path(sys.executable).parent / "ray")
    subprocess.run([ray_cli, "start", "--head", "--num-cpus", "2", "--port", "6391", "--include-dashboard", "false",
                    "--object-store-memory", str(100 * 2**20)], check=True, capture_output=True)
    csv_path = clips(shared_data, tmp_path, 8, signer="user04")
    out = tmp_path / "out"
    stopped = threading.Event()

    def stop_cluster_after_two() -> None:
        while len(list(out.rglob("*.npy"))) < 2:
            time.sleep(0.2)
        subprocess.run([ray_cli, "stop", "--force"], capture_output=True)
        stopped.set()

    threading.Thread(target=stop_cluster_after_two, daemon=True).start()
    try:
        with pytest.raises(ExtractError, match="the Ray cluster went away mid-run.*run the same command again"):
            extract_dataset(csv_path, out, SETTINGS, progress=False, executor=ray_engine("auto"))
    finally:
        stopped.wait(60)
        ray.shutdown()
        subprocess.run([ray_cli, "stop", "--force"], capture_output=True)
    finished = {k for k, v in json.loads((out / "manifest.json").read_text())["videos"].items() if v["status"] == "ok"}
    assert len(finished) >= 2 and all((out / k).with_suffix(".npy").is_file() for k in finished)
    again = extract_dataset(csv_path, out, SETTINGS, workers=1, progress=False)  # resumed here, on the local engine
    assert not again.failed and len(again.done) + len(again.skipped) == 8 and len(again.skipped) >= len(finished)
    assert np.isfinite(np.load(next(out.rglob("*.npy")))).any()
