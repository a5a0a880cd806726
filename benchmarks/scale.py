"""Past one machine, measured: extraction on Ray against the local pool, training from shards at 100x, a cost model.

    .venv/bin/python benchmarks/scale.py ray [--clips 24] [--rounds 2]
    .venv/bin/python benchmarks/scale.py shards LANDMARKS/labels.csv --work DIR [--replicas 100] [--rounds 2]
    .venv/bin/python benchmarks/scale.py formats LANDMARKS/labels.csv --work DIR [--sequences 400]
    .venv/bin/python benchmarks/scale.py cost --core-s-per-video-s X [--utilisation U]
    .venv/bin/python benchmarks/scale.py kaggle --work DIR [--replicas 1 200 2000] [--shard-mb 32]

`ray`: the same real MLR511 clips (spread over signers and signs, as recorded) through `signrec extract` on the
local process pool (2 workers) and on Ray actors of a local 2-CPU cluster, in turns (reversed every other round).
The cluster is started before the clock (a cluster outlives one command); its start-up is reported on its own.
The pool's CPU time (its worker processes, joined) over the seconds of video gives core-seconds per video-second.

`shards`: the MLR511 landmark dataset packed 1x and replicated: replica 0 is the real sequence, replica r >= 1 the
same under light geometric augmentation (scale, rotation, shift; seeded by r and the row), keyed `rNNN/...` and
labelled with a `replica` column, same label and signer. Training runs in a child process each (`_train`), so that
its peak RSS (and its data worker's) is its own: in memory from the folder against streamed from the 1x store, a
few epochs each, in turns; then one epoch streamed from the 100x store.

`formats`: the shard formats considered (Parquet without compression, lz4, zstd; a tar of .npy files, the
layout WebDataset reads), float32 and float16, on real sequences: size, write and read speed.

`kaggle`: `signrec import kaggle --shards` streaming Google ISLR's layout (train.csv + a parquet a sequence) into
a shard store, in a child process each: sequences a second and peak RSS, on the real ISLR sample in shared data and
on replicas of it (a generated train.csv listing the same real files r times, sequence ids `rNNNNN-<id>`).

`cost`: hours and core-hours to extract public corpora on 2, 64 and 512 cores from the measured core-seconds per
video-second. Video counts are the published ones; mean clip lengths are stated beside each (see BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(os.environ.get("SIGNREC_DATA_MIRROR") or Path(__file__).resolve().parents[2] / "shared" / "data")
CORPORA = {  # name: (videos, where the mean clip length comes from)
    "WLASL": (21_083, "wlasl_clips"),
    "AUTSL": (38_336, None),
    "ISLR (Kaggle)": (94_477, None),
}
CORES = (2, 64, 512)


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def video_seconds(paths: list[Path]) -> float:
    import cv2

    total = 0.0
    for path in paths:
        cap = cv2.VideoCapture(str(path))
        total += cap.get(cv2.CAP_PROP_FRAME_COUNT) / (cap.get(cv2.CAP_PROP_FPS) or 1)
        cap.release()
    return total


def bench_ray(args: argparse.Namespace) -> dict:
    import ray

    from signrec.landmarks.dataset import read_labels, write_labels
    from signrec.video.batch import extract_dataset
    from signrec.video.ray_engine import LOCAL_CONFIG, ray_engine

    samples = read_labels(DATA / "mlr511_arsl" / "labels.csv")
    picked = samples[:: max(1, len(samples) // args.clips)][: args.clips]
    work = Path(args.work)
    write_labels(work / "clips.csv", picked)
    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=100 * 2**20,
             _system_config=LOCAL_CONFIG if args.worker_niceness_0 else {})
    ray_start = time.perf_counter() - start
    runs = {"pool": {"workers": 2}, "ray": {"executor": ray_engine()}}
    seconds = dict.fromkeys(runs, 0.0)
    cpu = dict.fromkeys(runs, 0.0)
    frames = dict.fromkeys(runs, 0)
    for turn in range(args.rounds):
        for name in list(runs) if turn % 2 == 0 else list(runs)[::-1]:
            t0, c0 = time.perf_counter(), cpu_seconds()
            report = extract_dataset(work / "clips.csv", work / name, overwrite=True, progress=False, **runs[name])
            seconds[name] += time.perf_counter() - t0
            cpu[name] += cpu_seconds() - c0
            frames[name] += report.frames
            assert not report.failed, report.failed
    ray.shutdown()
    same = all((work / "ray" / p.relative_to(work / "pool")).read_bytes() == p.read_bytes()
               for p in (work / "pool").rglob("*.npy"))
    video_s = video_seconds([s.path for s in picked]) * args.rounds
    result = {"clips": len(picked), "rounds": args.rounds, "ray_worker_niceness_0": args.worker_niceness_0,
              "ray_start_s": round(ray_start, 1),
              "pool_s": round(seconds["pool"], 1), "ray_s": round(seconds["ray"], 1),
              "pool_fps": round(frames["pool"] / seconds["pool"], 2), "ray_fps": round(frames["ray"] / seconds["ray"], 2),
              "ray_vs_pool": round(seconds["pool"] / seconds["ray"], 3),
              "ray_vs_pool_with_start": round(seconds["pool"] / (seconds["ray"] + ray_start * args.rounds), 3),
              "bit_identical": same, "video_s": round(video_s, 1),
              "pool_core_s_per_video_s": round(cpu["pool"] / video_s, 3),
              "pool_utilisation": round(cpu["pool"] / seconds["pool"] / 2, 3)}
    print(json.dumps(result))
    return result


def replicate(folder_csv: Path, out: str, replicas: int) -> dict:
    """The 100x store: replica 0 as recorded, the others under light geometric augmentation."""
    from signrec import landmarks
    from signrec.landmarks.dataset import Sample, read_labels
    from signrec.landmarks.shards import ShardWriter
    from signrec.landmarks.store import FolderStore
    from signrec.train.augment import Compose, Rotate, Scale, Shift

    samples = read_labels(folder_csv)
    arrays = [landmarks.load(s.path) for s in samples]
    base = folder_csv.parent.resolve()
    keys = [Path(os.path.relpath(s.path, base)).as_posix() for s in samples]
    light = Compose([Scale(p=1.0), Rotate(p=0.5), Shift(p=1.0)])
    writer = ShardWriter(out, "float32", 256, FolderStore.open(folder_csv).landmark_models)
    start = time.perf_counter()
    order = np.random.default_rng(0).permutation(len(samples) * replicas)
    for position in order:  # packed mixed, as `signrec pack` does
        r, i = divmod(int(position), len(samples))
        array = arrays[i] if r == 0 else light(arrays[i], np.random.default_rng([r, i]))
        s = samples[i]
        writer.add(Sample(s.path, s.label, s.signer, {**s.extra, "replica": str(r)}), f"r{r:03d}/{keys[i]}",
                   array, int(position))
    writer.close()
    size = sum(writer.fs.size(f"{writer.root}/{s['name']}") for s in writer.shards)
    return {"sequences": len(samples) * replicas, "shards": len(writer.shards), "bytes": size,
            "write_s": round(time.perf_counter() - start, 1)}


def child_train(data: str, out: str, epochs: int) -> dict:
    """Run in a child process: train, then report fit time and peak RSS of this process and its data workers."""
    from signrec.train import TrainConfig, train

    config = TrainConfig(max_epochs=epochs, patience=1000, test_signers=("user08",), val_signers=("user07",))
    t0 = time.perf_counter()
    metrics = train(data, out, config, progress=False)
    split = json.loads((Path(out) / "split.json").read_text())
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"data": data, "epochs": metrics["epochs"], "fit_s": metrics["fit_seconds"],
            "wall_s": round(time.perf_counter() - t0, 1), "train_sequences": split["sizes"]["train"],
            "train_seq_per_s": round(split["sizes"]["train"] * metrics["epochs"] / metrics["fit_seconds"], 1),
            "peak_rss_mb": round(own.ru_maxrss / 1024), "worker_peak_rss_mb": round(kids.ru_maxrss / 1024),
            "test_top1": metrics["test"]["top1"]}


def run_child(data: str, out: Path, epochs: int) -> dict:
    proc = subprocess.run([sys.executable, __file__, "_train", data, str(out), str(epochs)], capture_output=True,
                          text=True, check=False)
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps(result), flush=True)
    return result


def bench_shards(args: argparse.Namespace) -> dict:
    """`--only 1x`: in memory against streamed from the 1x store; `--only big`: one epoch from the replicated
    store. A store already written (its store.json there) is reused, not written again."""
    from signrec.landmarks.shards import ShardStore, pack

    work = Path(args.work)
    folder = Path(args.landmarks)
    results: dict = {}
    if args.only in (None, "1x"):
        if not (work / "x1" / "store.json").is_file():
            t0 = time.perf_counter()
            one = pack(folder, str(work / "x1"), progress=False)
            results["pack_1x"] = {**one.to_dict(), "seconds": round(time.perf_counter() - t0, 1)}
            print(json.dumps(results["pack_1x"]), flush=True)
        runs = []
        for turn in range(args.rounds):
            pair = [str(folder), str(work / "x1")]
            for data in pair if turn % 2 == 0 else pair[::-1]:
                runs.append(run_child(data, work / f"run-{time.time_ns()}", args.epochs))
        memory = [r for r in runs if r["data"] == str(folder)]
        streamed = [r for r in runs if r["data"] != str(folder)]

        def rate(rs: list[dict]) -> float:
            return sum(r["train_sequences"] * r["epochs"] for r in rs) / sum(r["fit_s"] for r in rs)

        results["in_memory_1x_seq_per_s"] = round(rate(memory), 1)
        results["streamed_1x_seq_per_s"] = round(rate(streamed), 1)
        results["streamed_1x_vs_memory"] = round(rate(streamed) / rate(memory), 3)
    if args.only in (None, "big"):
        big_store = work / f"x{args.replicas}"
        if not (big_store / "store.json").is_file():
            results["replicated"] = replicate(folder, str(big_store), args.replicas)
            print(json.dumps(results["replicated"]), flush=True)
        store = ShardStore(big_store)
        results["big_store"] = {"sequences": len(store.samples), "shards": len(store.meta["shards"]),
                                "bytes": sum((big_store / s["name"]).stat().st_size for s in store.meta["shards"])}
        results["streamed_big"] = run_child(str(big_store), work / f"run-big-{time.time_ns()}", 1)
    print(json.dumps(results))
    return results


def kaggle_replica(sample_csv: Path, out: Path, replicas: int) -> Path:
    """A train.csv listing every real file of the ISLR sample `replicas` times (sequence_id `rNNNNN-<id>`): the
    same real parquet files, read again for each row, to measure rate and memory at ISLR's scale."""
    import csv

    with open(sample_csv, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "train.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        for r in range(replicas):
            for row in rows:
                writer.writerow({**row, "path": str((sample_csv.parent / row["path"]).resolve()),
                                 "sequence_id": f"r{r:05d}-{row['sequence_id']}"})
    return out / "train.csv"


def child_import(csv_path: str, out: str, shard_mb: float) -> dict:
    """Run in a child process: `signrec import kaggle --shards` on `csv_path`, its rate and this process's peak RSS
    (and the RSS before the import, once its libraries are loaded)."""
    import pandas  # noqa: F401  (loaded before the baseline, as the import loads it)
    import pyarrow.parquet  # noqa: F401

    from signrec.landmarks.formats import import_dataset
    from signrec.landmarks.shards import ShardStore

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    report = import_dataset("kaggle", csv_path, out, progress=False, shards="float32", shard_mb=shard_mb)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    store = ShardStore(out)
    raw = sum(store.frames(s) for s in store.samples) * 543 * 3 * 4
    return {"csv": csv_path, "sequences": report.converted, "failed": len(report.failed), "seconds": round(seconds, 1),
            "seq_per_s": round(report.converted / seconds, 1), "shards": len(store.meta["shards"]),
            "landmarks_mb": round(raw / 2**20, 1), "rss_before_mb": round(before / 1024),
            "peak_rss_mb": round(peak / 1024)}


def bench_kaggle(args: argparse.Namespace) -> list[dict]:
    """`signrec import kaggle --shards` on the real ISLR sample, then on replicas of it listed `r` times."""
    sample = DATA / "kaggle_islr_schema" / "train.csv"
    work = Path(args.work)
    results = []
    for replicas in args.replicas:
        csv_path = sample if replicas == 1 else kaggle_replica(sample, work / f"replica-{replicas}", replicas)
        out = work / f"store-{replicas}-{time.time_ns()}"
        proc = subprocess.run([sys.executable, __file__, "_import", str(csv_path), str(out), str(args.shard_mb)],
                              capture_output=True, text=True, check=False)
        if proc.returncode:
            raise SystemExit(proc.stderr[-3000:])
        result = {"replicas": replicas, **json.loads(proc.stdout.strip().splitlines()[-1])}
        print(json.dumps(result), flush=True)
        results.append(result)
    print("| data | sequences | shards | landmarks (float32) | seconds | sequences/s | RSS before | peak RSS |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        name = "ISLR sample (real)" if r["replicas"] == 1 else f"replica {r['replicas']}x of the sample"
        print(f"| {name} | {r['sequences']:,} | {r['shards']} | {r['landmarks_mb']} MB | {r['seconds']} | "
              f"{r['seq_per_s']} | {r['rss_before_mb']} MB | {r['peak_rss_mb']} MB |")
    return results


def bench_formats(args: argparse.Namespace) -> None:
    """Candidate shard formats on real landmark sequences: size, write and read speed (best of 3 reads)."""
    import io
    import tarfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    from signrec import landmarks
    from signrec.landmarks.dataset import read_labels

    arrays = [landmarks.load(s.path) for s in read_labels(args.landmarks)[: args.sequences]]
    raw = sum(a.nbytes for a in arrays)
    work = Path(args.work)

    def best(fn, n: int = 3) -> float:
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    print(f"{len(arrays)} real MLR511 sequences, {raw / 2**20:.0f} MiB as float32\n")
    print("| format | dtype | size / float32 | write MiB/s | read MiB/s (to float32 arrays) |\n|---|---|---|---|---|")
    for dtype in ("float32", "float16"):
        blobs = [a.astype(dtype).tobytes() for a in arrays]
        table = pa.table({"frames": [len(a) for a in arrays], "landmarks": pa.array(blobs, pa.large_binary())})
        for codec in ("none", "lz4", "zstd"):
            path = work / f"{dtype}-{codec}.parquet"
            wrote = best(lambda t=table, p=path, c=codec: pq.write_table(t, p, compression=c, row_group_size=64,
                                                                         write_page_checksum=True), 1)

            def read(path: Path = path, dtype: str = dtype) -> None:
                pf = pq.ParquetFile(path, page_checksum_verification=True)
                for g in range(pf.num_row_groups):
                    t = pf.read_row_group(g)
                    col = t.column("landmarks").combine_chunks()
                    offsets, data = np.frombuffer(col.buffers()[1], np.int64), np.frombuffer(col.buffers()[2], np.uint8)
                    for n, a, b in zip(t.column("frames").to_numpy(), offsets[:-1], offsets[1:], strict=True):
                        data[a:b].view(dtype).reshape(n, 543, 3).astype(np.float32)
            print(f"| Parquet, {codec} | {dtype} | {path.stat().st_size / raw:.2f} | {raw / 2**20 / wrote:.0f} "
                  f"| {raw / 2**20 / best(read):.0f} |")
        path = work / f"{dtype}.tar"

        def write_tar(path: Path = path, dtype: str = dtype) -> None:
            with tarfile.open(path, "w") as tf:
                for i, a in enumerate(arrays):
                    buf = io.BytesIO()
                    np.save(buf, a.astype(dtype))
                    info = tarfile.TarInfo(f"{i:06d}.npy")
                    info.size = buf.tell()
                    buf.seek(0)
                    tf.addfile(info, buf)

        def read_tar(path: Path = path) -> None:
            with tarfile.open(path) as tf:
                for member in tf:
                    np.load(io.BytesIO(tf.extractfile(member).read())).astype(np.float32)
        wrote = best(write_tar, 1)
        print(f"| tar of .npy (WebDataset's layout) | {dtype} | {path.stat().st_size / raw:.2f} "
              f"| {raw / 2**20 / wrote:.0f} | {raw / 2**20 / best(read_tar):.0f} |")


def cost(args: argparse.Namespace) -> None:
    """Hours at 15 landmark frames per second of video: every frame of 15 fps video (MLR511, where the core-seconds
    were measured), every second frame of 30 fps video (`--frame-step 2`, as the demo extracts)."""
    from signrec.landmarks.dataset import read_labels

    def mean_s(name: str) -> float:
        videos = [s.path for s in read_labels(DATA / name / "labels.csv")]
        return video_seconds(videos) / len(videos)

    mlr = mean_s("mlr511_arsl")
    print(f"{args.core_s_per_video_s} core-seconds per second of video at 15 landmark frames a second; cores "
          f"{args.utilisation:.0%} busy\n")
    print("| corpus | videos | mean s a video | core-hours | " + " | ".join(f"hours on {c} cores" for c in CORES)
          + " |\n|---|---|---|---|" + "---|" * len(CORES))
    for name, (videos, folder) in CORPORA.items():
        mean = mean_s(folder) if folder else mlr
        why = f"the {folder} in shared data" if folder else "assumed: MLR511's mean"
        core_h = videos * mean * args.core_s_per_video_s / 3600
        hours = " | ".join(f"{core_h / (c * args.utilisation):.2f}" for c in CORES)
        print(f"| {name} | {videos:,} | {mean:.2f} ({why}) | {core_h:.1f} | {hours} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("ray")
    p.add_argument("--clips", type=int, default=24)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--work", required=True)
    p.add_argument("--ray-default-niceness", dest="worker_niceness_0", action="store_false",
                   help="leave Ray's workers at its default priority (15 nice levels down)")
    p = sub.add_parser("shards")
    p.add_argument("landmarks", help="labels.csv of the MLR511 landmark dataset")
    p.add_argument("--work", required=True)
    p.add_argument("--replicas", type=int, default=100)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--only", choices=("1x", "big"), default=None)
    p = sub.add_parser("formats")
    p.add_argument("landmarks", help="labels.csv of the MLR511 landmark dataset")
    p.add_argument("--work", required=True)
    p.add_argument("--sequences", type=int, default=400)
    p = sub.add_parser("cost")
    p.add_argument("--core-s-per-video-s", type=float, required=True)
    p.add_argument("--utilisation", type=float, default=1.0, help="busy fraction of the cores, as measured")
    p = sub.add_parser("kaggle")
    p.add_argument("--work", required=True)
    p.add_argument("--replicas", type=int, nargs="+", default=[1, 200, 2000])
    p.add_argument("--shard-mb", type=float, default=32.0)
    p = sub.add_parser("_import")
    p.add_argument("csv")
    p.add_argument("out")
    p.add_argument("shard_mb", type=float)
    p = sub.add_parser("_train")
    p.add_argument("data")
    p.add_argument("out")
    p.add_argument("epochs", type=int)
    args = parser.parse_args()
    if args.what == "_train":
        print(json.dumps(child_train(args.data, args.out, args.epochs)))
    elif args.what == "_import":
        print(json.dumps(child_import(args.csv, args.out, args.shard_mb)))
    elif args.what in BENCHES:
        Path(args.work).mkdir(parents=True, exist_ok=True)
        BENCHES[args.what](args)
    else:
        cost(args)
    return 0


BENCHES = {"kaggle": bench_kaggle, "ray": bench_ray, "formats": bench_formats, "shards": bench_shards}
"""The measurements that write into --work."""

if __name__ == "__main__":
    sys.exit(main())
