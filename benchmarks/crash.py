"""Crash matrix: SIGKILL a command at a random moment, rerun it, and compare with a run never interrupted.

    python benchmarks/crash.py [--trials 10] [--commands extract,import,train,pack,enroll] [--seed 0]

For each command: one uninterrupted reference run; then, per trial, the same command in a fresh folder killed
(SIGKILL to its whole process group, workers included) after 2-60 % of the reference run's duration (a rerun
is often faster than the reference, which loads cold caches),
then run again as a user would (train with --resume). Checked per trial: the rerun exits 0; no file under a
final name is partial (every .npy loads, every .json and .csv parses); what atomic writes left behind
(`.NAME.*.part` files) is counted; the results equal the reference (landmark arrays bit for bit, labels.csv,
and for train the test accuracy). Commands this branch lacks (pack, enroll) are skipped with a note.
Prints a Markdown table; exit status 1 if any trial failed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SIGNREC_DATA_MIRROR") or REPO.parent / "shared" / "data")
SIGNREC = [sys.executable, "-m", "signrec.cli"]


def signrec_commands() -> set[str]:
    from signrec.cli import COMMANDS

    return set(COMMANDS)


def video_subset(work: Path, n: int = 6) -> Path:
    """labels.csv of `n` MLR511 videos (two signers, so train could split them), paths pointing into shared data."""
    with open(DATA / "mlr511_arsl" / "labels.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    rows = [r for r in rows if r["signer"] in ("user07", "user08") and r["repetition"] in ("R01", "R02")][:n]
    out = work / "videos.csv"
    with open(out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, "path": str((DATA / "mlr511_arsl" / r["path"]).resolve())})
    return out


def tiny_landmarks() -> Path:
    """The 45-clip landmark set the tests extract (tests/conftest.py), for train."""
    path = REPO / ".pytest_cache" / "d" / "signrec-mlr511-tiny" / "labels.csv"
    if not path.is_file():
        raise SystemExit(f"{path} not found: run `pytest tests/serve/test_fuzz.py` once to make it")
    return path


def commands(work: Path) -> dict[str, tuple[Callable[[Path], list[str]], Callable[[Path], list[str]] | None]]:
    """name -> (argv for an output folder, argv of the rerun if not the same)."""
    videos = video_subset(work)
    return {
        "extract": (lambda out: [*SIGNREC, "extract", str(videos), "--out", str(out), "--workers", "2",
                                 "--frame-step", "2", "--quiet"], None),
        "import": (lambda out: [*SIGNREC, "import", "mpdata", str(DATA / "tutorial_mp_data" / "MP_Data"), "--out",
                                str(out)], None),
        "train": (lambda out: [*SIGNREC, "train", str(tiny_landmarks()), "--out", str(out), "--test-signers",
                               "user07", "--val-signers", "user06", "--max-epochs", "6", "--seed", "0"],
                  # --resume refuses even unchanged split options (README says "the same command plus --resume")
                  lambda out: [*SIGNREC, "train", str(tiny_landmarks()), "--out", str(out), "--resume",
                               "--max-epochs", "6"]),
    }


def run(argv: list[str], timeout: float = 1800) -> tuple[int, float, str]:
    start = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return done.returncode, time.monotonic() - start, (done.stderr or done.stdout).strip().splitlines()[-1:]


def kill_after(argv: list[str], seconds: float) -> bool:
    """Start `argv` in its own process group and SIGKILL the group after `seconds`; False if it ended first."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        proc.wait(seconds)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(0.5)
        return True


def broken_files(out: Path) -> tuple[list[str], list[str]]:
    """(files under final names that do not read back, leftover .part files of atomic writes)."""
    broken, parts = [], []
    for path in out.rglob("*"):
        if not path.is_file():
            continue
        if ".part" in path.name and path.name.startswith("."):
            parts.append(str(path.relative_to(out)))
            continue
        try:
            if path.suffix == ".npy":
                np.load(path, allow_pickle=False)
            elif path.suffix == ".json":
                json.loads(path.read_text(encoding="utf-8"))
            elif path.suffix == ".csv":
                list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
        except Exception as exc:  # any failure to read back is the finding
            broken.append(f"{path.relative_to(out)}: {type(exc).__name__}")
    return broken, parts


def same_result(name: str, ref: Path, out: Path) -> tuple[bool, str]:
    if name == "train":  # resumed training is compared by its test scores and epochs, not bit for bit
        a, b = (json.loads((d / "metrics.json").read_text()) for d in (ref, out))
        pick = {k: v for k, v in a["test"].items() if isinstance(v, int | float)}
        got = {k: b["test"].get(k) for k in pick}
        return pick == got and a["epochs"] == b["epochs"], f"test {got} epochs {b['epochs']} (reference {pick}, " \
            f"epochs {a['epochs']})"
    ref_files = sorted(p.relative_to(ref) for p in ref.rglob("*.npy"))
    out_files = sorted(p.relative_to(out) for p in out.rglob("*.npy"))
    if ref_files != out_files:
        return False, f"{len(out_files)} arrays, reference {len(ref_files)}"
    differ = [str(p) for p in ref_files if not np.array_equal(np.load(ref / p), np.load(out / p), equal_nan=True)]
    labels_equal = (ref / "labels.csv").read_text() == (out / "labels.csv").read_text()
    return not differ and labels_equal, f"{len(ref_files)} arrays, {len(differ)} differ, labels.csv " + \
        ("equal" if labels_equal else "differs")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--commands", default="extract,import,train,pack,enroll")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    available = signrec_commands()
    rows, failed = [], 0
    with tempfile.TemporaryDirectory(prefix="signrec-crash-") as tmp:
        work = Path(tmp)
        matrix = commands(work)
        for name in args.commands.split(","):
            if name not in available or name not in matrix:
                print(f"note: `signrec {name}` is not on this branch; skipped", flush=True)
                continue
            argv, rerun_argv = matrix[name]
            ref = work / f"{name}-ref"
            code, ref_s, tail = run(argv(ref))
            if code != 0:
                raise SystemExit(f"reference run of {name} failed ({code}): {tail}")
            stats = {"killed": 0, "rerun_ok": 0, "broken": 0, "parts_after_kill": 0, "parts_after_rerun": 0,
                     "equal": 0, "notes": set()}
            for trial in range(args.trials):
                out = work / f"{name}-{trial}"
                stats["killed"] += kill_after(argv(out), rng.uniform(0.02, 0.6) * ref_s)
                stats["parts_after_kill"] += len(broken_files(out)[1]) if out.exists() else 0
                resumable = rerun_argv is not None and (out / "config.json").is_file()
                code, _s, tail = run(rerun_argv(out) if resumable else argv(out))
                broken, parts = broken_files(out)
                equal, note = same_result(name, ref, out) if code == 0 else (False, f"rerun exit {code}: {tail}")
                stats["rerun_ok"] += code == 0
                stats["broken"] += bool(broken)
                stats["parts_after_rerun"] += len(parts)
                stats["equal"] += equal
                if not equal or broken:
                    stats["notes"].add(note + (f"; broken {broken[:2]}" if broken else ""))
                ok = code == 0 and equal and not broken
                failed += not ok
                print(f"{name} trial {trial}: {'ok' if ok else 'FAILED'} ({note})", flush=True)
                shutil.rmtree(out, ignore_errors=True)
            rows.append((name, ref_s, stats))
    print("\n| command | reference s | trials | killed mid-run | rerun exit 0 | partial files under final names "
          "| .part files after kill / after rerun | equal to reference | notes |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, ref_s, s in rows:
        print(f"| {name} | {ref_s:.0f} | {args.trials} | {s['killed']} | {s['rerun_ok']} | {s['broken']} "
              f"| {s['parts_after_kill']} / {s['parts_after_rerun']} | {s['equal']} | {'; '.join(sorted(s['notes']))} |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
