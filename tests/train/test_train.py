"""Training on small real subsets: learning, the run folder, resume, LOSO and 2-process DDP."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from learning_data import lsa64_subset
from signrec import SignrecError, cli
from signrec.model.artifact import Classifier
from signrec.train.config import TrainConfig
from signrec.train.loso import train_loso
from signrec.train.run import duration, train

FAST = {"max_epochs": 12, "patience": 4, "hparams": {"hidden": 48}}


@pytest.fixture(scope="module")
def lsa64_small(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 LSA64 signs x 8 signers x 5 repetitions = 200 real sequences."""
    return lsa64_subset(shared_data, tmp_path_factory.mktemp("lsa64"))


@pytest.fixture(scope="module")
def lsa64_tiny(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 signs x 4 signers x 2 repetitions."""
    return lsa64_subset(shared_data, tmp_path_factory.mktemp("tiny"), signs=("Accept", "Food", "Green"),
                        signers=("001", "002", "003", "004"), repetitions=2)


def test_training_on_unseen_signer_beats_chance(lsa64_small: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    config = TrainConfig(test_signers=("008",), val_signers=("007",), **FAST)
    metrics = train(lsa64_small, run, config, progress=False)
    assert metrics is not None
    assert metrics["test"]["n"] == 25
    assert metrics["test"]["top1"] >= 0.6, metrics  # chance is 0.2
    for name in ("config.json", "split.json", "metrics.json", "logs/metrics.csv", "learning_curves.png",
                 "checkpoints/best.ckpt", "checkpoints/last.ckpt", "model/model.safetensors", "model/model.json"):
        assert (run / name).is_file(), name
    split = json.loads((run / "split.json").read_text())
    assert split["signers"] == {"train": ["001", "002", "003", "004", "005", "006"], "val": ["007"], "test": ["008"]}
    model = Classifier.load(run / "model")
    assert model.meta["metrics"]["test"]["top1"] == metrics["test"]["top1"]
    assert model.meta["training"]["config"]["test_signers"] == ["008"]
    assert model.meta["training"]["split"]["signers"] == split["signers"]  # evaluate warns of these signers


def checkpoint(run: Path, name: str) -> dict:
    return torch.load(run / "checkpoints" / f"{name}.ckpt", map_location="cpu", weights_only=True)


def logged_epochs(run: Path) -> list[int]:
    """The epoch of each validation row of the run's CSV log."""
    with open(run / "logs" / "metrics.csv", newline="") as fh:
        return [int(row["epoch"]) for row in csv.DictReader(fh) if row["val_loss"]]


def test_last_checkpoint_holds_the_last_epoch_not_the_best(lsa64_tiny: Path, tmp_path: Path) -> None:
    config = TrainConfig(max_epochs=2, hparams={"hidden": 16}, optimizer="adamw", lr=0.3, schedule="cosine")
    metrics = train(lsa64_tiny, tmp_path / "run", config, progress=False)
    assert metrics is not None and metrics["best_epoch"] == 0, metrics  # this lr overshoots in the second epoch
    assert checkpoint(tmp_path / "run", "best")["epoch"] == 0
    assert checkpoint(tmp_path / "run", "last")["epoch"] == 1  # where --resume continues


def test_resume_refuses_a_complete_run_and_other_settings_but_trains_it_longer(lsa64_tiny: Path, tmp_path: Path,
                                                                              capsys) -> None:
    run = tmp_path / "run"
    args = ["train", str(lsa64_tiny), "--out", str(run), "--max-epochs", "2", "--hparam", "hidden=16",
            "--optimizer", "adamw", "--lr", "0.003", "--schedule", "cosine"]
    assert cli.main([*args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["best_epoch"] == 1  # the final epoch: its last.ckpt is the best
    written = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    resume = ["train", str(lsa64_tiny), "--out", str(run), "--resume"]
    assert cli.main(resume) == 2
    assert "is complete: it ran all its 2 epochs; --resume --max-epochs N with N > 2 trains it longer" \
        in capsys.readouterr().err
    assert cli.main([*resume, "--max-epochs", "3", "--lr", "0.5", "--hparam", "hidden=8"]) == 2
    assert "--hparam, --lr can not change (only --max-epochs, --patience" in capsys.readouterr().err
    assert cli.main(args) == 2  # the folder is checked before the split is shown
    assert capsys.readouterr().err.startswith(f"signrec train: error: {run} already holds a training run")
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == written

    # the same command plus --resume (its settings repeated, unchanged) continues the run
    assert cli.main([*args, "--resume", "--max-epochs", "3", "--patience", "5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["epochs"] == 3
    assert logged_epochs(run) == [0, 1, 2]
    assert checkpoint(run, "last")["epoch"] == 2
    stopper = next(v for k, v in checkpoint(run, "last")["callbacks"].items() if k.startswith("EarlyStopping"))
    assert stopper["patience"] == 5  # not the 10 restored from the checkpoint
    config = json.loads((run / "config.json").read_text())["config"]
    assert (config["optimizer"], config["schedule"], config["max_epochs"], config["patience"]) == \
        ("adamw", "cosine", 3, 5)
    assert cli.main(["train", str(lsa64_tiny), "--out", str(run), "--loso", "--resume"]) == 2
    assert "holds a single run; resume it without --loso" in capsys.readouterr().err


def test_ctrl_c_stops_training_with_a_hint_to_resume(lsa64_tiny: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "signrec.cli", "train", str(lsa64_tiny), "--out", str(run),
                             "--max-epochs", "100000", "--patience", "100000", "--hparam", "hidden=16"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    last, deadline = run / "checkpoints" / "last.ckpt", time.monotonic() + 120
    while not last.is_file() and time.monotonic() < deadline:
        time.sleep(0.05)
    first = last.stat().st_mtime_ns
    while last.stat().st_mtime_ns == first and time.monotonic() < deadline:  # a second epoch: --max-epochs 1 below
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert err.endswith(f"signrec train: interrupted; `signrec train {lsa64_tiny} --out {run} --resume` continues "
                        "it from the last checkpoint\n"), err[-3000:]
    assert out == "" and "Traceback" not in err
    epoch = checkpoint(run, "last")["epoch"]
    resume = ["train", str(lsa64_tiny), "--out", str(run), "--resume", "--max-epochs"]
    assert cli.main([*resume, str(epoch)]) == 2
    assert f"has trained {epoch + 1} epochs already; resume with --max-epochs {epoch + 1} or more" \
        in capsys.readouterr().err
    assert cli.main([*resume, str(epoch + 3), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["epochs"] == epoch + 3
    assert logged_epochs(run) == list(range(epoch + 3))


def test_ctrl_c_stops_parallel_folds_at_once(lsa64_tiny: Path, tmp_path: Path) -> None:
    """Ctrl+C reaches the fold workers too (one process group); no fold starts after it, so the run ends."""
    run = tmp_path / "loso"
    proc = subprocess.Popen([sys.executable, "-m", "signrec.cli", "train", str(lsa64_tiny), "--out", str(run),
                             "--loso", "--jobs", "2", "--max-epochs", "100000", "--patience", "100000",
                             "--hparam", "hidden=16"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not list(run.glob("fold-*/checkpoints/last.ckpt")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-3000:]
    assert err.endswith(f"`signrec train {lsa64_tiny} --out {run} --loso --resume` continues it from the last "
                        "checkpoint\n"), err[-3000:]
    assert len(list(run.glob("fold-*"))) <= 2  # at most the two folds in flight; the others never started


def test_model_to_deploy_learns_from_every_signer_but_the_validating_one(lsa64_tiny: Path, tmp_path: Path,
                                                                          capsys) -> None:
    """`--val-signers` alone: no test set, every other signer trains (README, "Your own data")."""
    run = tmp_path / "run"
    args = ["train", str(lsa64_tiny), "--out", str(run), "--val-signers", "004", "--max-epochs", "1", "--json"]
    assert cli.main(args) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert "test" not in metrics and metrics["val"]["n"] == 6
    split = json.loads((run / "split.json").read_text())
    assert split["signers"] == {"train": ["001", "002", "003"], "val": ["004"], "test": []}
    assert metrics["split"]["signers"] == split["signers"] and metrics["model"] == str(run / "model")
    assert Classifier.load(run / "model").labels == ["Accept", "Food", "Green"]


def test_the_terminal_shows_the_default_split_and_keeps_progress_bars_off_stdout(lsa64_tiny: Path, tmp_path: Path,
                                                                                 capsys, monkeypatch) -> None:
    args = ["train", str(lsa64_tiny), "--max-epochs", "2", "--hparam", "hidden=16"]
    assert cli.main([*args, "--out", str(tmp_path / "log")]) == 0  # stderr into a log: no progress bars
    out, err = capsys.readouterr()
    assert err == "split: by signer: train 001, 002 (12 clips), val 003 (6 clips), test 004 (6 clips)\n"
    assert re.match(r"trained lstm for 2 epochs in \d\.\d s \(best epoch \d\)\n", out), out
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert cli.main([*args, "--out", str(tmp_path / "terminal")]) == 0
    out, err = capsys.readouterr()
    assert err.startswith("split: by signer: train 001, 002 (12 clips), val 003 (6 clips), test 004 (6 clips)\n")
    assert "Epoch 1" in err and "Epoch" not in out and "it/s" not in out
    assert [duration(s) for s in (0.04, 9.94, 42.4, 754.6)] == ["0.0 s", "9.9 s", "42 s", "12 min 35 s"]


def test_leave_one_signer_out(lsa64_tiny: Path, tmp_path: Path, capsys) -> None:
    config = TrainConfig(max_epochs=1, hparams={"hidden": 16}, schedule="plateau", mixup=0.4)
    summary = train_loso(lsa64_tiny, tmp_path / "loso", config)
    assert summary is not None
    assert [row["signer"] for row in summary["folds"]] == ["001", "002", "003", "004"]
    assert all(row["n"] == 6 for row in summary["folds"])
    assert 0 <= summary["mean"]["top1"] <= 1
    assert "| **mean** |" in (tmp_path / "loso" / "loso.md").read_text()
    fold = json.loads((tmp_path / "loso" / "fold-002" / "split.json").read_text())
    assert fold["signers"]["test"] == ["002"] and fold["signers"]["val"] == ["003"]
    # Each fold's model card says what the recipe gives a new person: the mean and spread over all the folds.
    card = json.loads((tmp_path / "loso" / "fold-002" / "model" / "model.json").read_text())["card"]
    assert card["new_person"]["how"] == "leave one signer out" and card["new_person"]["folds"] == 4
    assert card["new_person"]["top1_mean"] == pytest.approx(summary["mean"]["top1"])
    assert cli.main(["card", str(tmp_path / "loso" / "fold-002" / "model")]) == 0
    assert "on a new person: top-1" in capsys.readouterr().out
    # Folds trained side by side, one process each, give the same models as one after the other.
    assert cli.main(["train", str(lsa64_tiny), "--out", str(tmp_path / "jobs"), "--loso", "--jobs", "2",
                     "--max-epochs", "1", "--hparam", "hidden=16", "--schedule", "plateau", "--mixup", "0.4",
                     "--json"]) == 0
    parallel = json.loads(capsys.readouterr().out)
    assert [(r["signer"], r["top1"], r["epochs"]) for r in parallel["folds"]] == \
        [(r["signer"], r["top1"], r["epochs"]) for r in summary["folds"]]
    assert parallel["mean"]["top1"] == summary["mean"]["top1"]
    table = (tmp_path / "jobs" / "loso.md").read_text().splitlines()
    assert all(re.search(r"\| \d+\.\d \|$", line) for line in table[2:]), table  # fit s: short folds show


def test_an_interrupted_leave_one_signer_out_run_resumes(lsa64_tiny: Path, tmp_path: Path, capsys) -> None:
    """Finished folds are kept, a begun fold continues, a missing fold is trained, the table covers them all."""
    loso = ["train", str(lsa64_tiny), "--out", str(tmp_path / "loso"), "--loso"]
    args = [*loso, "--max-epochs", "2", "--hparam", "hidden=16", "--json"]
    assert cli.main(args) == 0
    rows = json.loads(capsys.readouterr().out)["folds"]
    kept = {p: p.stat().st_mtime_ns for p in (tmp_path / "loso" / "fold-001").rglob("*")}
    for name in ("metrics.json", "model/model.safetensors", "model/model.json"):
        (tmp_path / "loso" / "fold-002" / name).unlink()  # stopped after its last epoch, before its results
    shutil.rmtree(tmp_path / "loso" / "fold-003")  # never begun
    (tmp_path / "loso" / "loso.json").unlink()
    assert cli.main(args) == 2
    assert "already holds a training run; continue it with --resume" in capsys.readouterr().err
    assert cli.main([*loso, "--resume", "--json"]) == 0
    resumed = json.loads(capsys.readouterr().out)["folds"]
    assert [(r["signer"], r["top1"], r["epochs"]) for r in resumed] == [(r["signer"], r["top1"], r["epochs"])
                                                                          for r in rows]
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "loso" / "fold-001").rglob("*")} == kept
    assert cli.main([*loso, "--resume"]) == 2
    assert "is complete: all 4 folds are trained" in capsys.readouterr().err


def test_two_process_ddp(lsa64_tiny: Path, tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    done = subprocess.run([sys.executable, "-m", "signrec.cli", "train", str(lsa64_tiny), "--out", str(run),
                           "--devices", "2", "--max-epochs", "1", "--hparam", "hidden=16", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "sync_dist" not in done.stderr  # training metrics are per process on purpose
    assert json.loads(done.stdout)["epochs"] == 1
    assert (run / "model" / "model.safetensors").is_file()
    assert json.loads((run / "config.json").read_text())["config"]["devices"] == 2


def test_bad_options_are_user_errors(lsa64_tiny: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(SignrecError, match="unknown model"):
        TrainConfig(model="nope")
    with pytest.raises(SignrecError, match="mixup"):
        TrainConfig(mixup=-0.1)
    assert cli.main(["train", str(lsa64_tiny), "--out", str(tmp_path / "r"), "--test-signers", "999"]) == 2
    assert "unknown signer" in capsys.readouterr().err
    assert cli.main(["train", str(lsa64_tiny), "--out", str(tmp_path / "r"), "--hparam", "wings=2"]) == 2
    assert cli.main(["train", str(lsa64_tiny), "--out", str(tmp_path / "none"), "--resume"]) == 2
    capsys.readouterr()
    assert cli.main(["train", str(lsa64_tiny), "--out", str(tmp_path / "r"), "--jobs", "2"]) == 2
    assert "use it with --loso" in capsys.readouterr().err
    assert cli.main(["train", str(lsa64_tiny), "--out", str(tmp_path / "r"), "--loso", "--jobs", "2",
                     "--devices", "2"]) == 2
    assert "DDP" in capsys.readouterr().err
    # Nonsensical numbers are refused by the option's own name, before any work; the API checks them too.
    for option, value, message in (("--max-epochs", "0", ">= 1"), ("--batch-size", "0", ">= 1"), ("--lr", "0", "> 0"),
                                   ("--patience", "-1", ">= 0"), ("--label-smoothing", "1", ">= 0 and < 1"),
                                   ("--jobs", "0", ">= 1"), ("--threads", "0", ">= 1"), ("--seed", "-1", ">= 0")):
        with pytest.raises(SystemExit) as exit_:
            cli.main(["train", str(lsa64_tiny), "--out", str(tmp_path / "r"), option, value])
        assert exit_.value.code == 2 and f"argument {option}: must be {message}" in capsys.readouterr().err
    with pytest.raises(SignrecError, match="max_epochs must be >= 1, got 0"):
        TrainConfig(max_epochs=0)
    # An unknown feature setting gets the list of known ones, as --hparam does.
    assert cli.main(["train", str(lsa64_tiny), "--out", str(tmp_path / "r"), "--feature", "nosuchkey=1"]) == 2
    err = capsys.readouterr().err
    assert "nosuchkey" in err and "use_z" in err and "frames" in err


def test_bad_and_repeated_rows_are_said_and_never_cross_a_split(lsa64_tiny: Path, tmp_path: Path, capsys) -> None:
    """A repeated row is used once, a file with nothing detected or an infinite value is skipped, each said on the
    terminal; a file listed under two labels is refused: it would be learnt as one sign and tested as another."""
    import numpy as np

    from signrec import landmarks
    from signrec.landmarks import dataset

    rows = dataset.read_labels(lsa64_tiny)
    nothing, infinite = tmp_path / "nothing.npy", tmp_path / "infinite.npy"
    np.save(nothing, landmarks.empty(20))
    array = landmarks.load(rows[0].path)
    array[0, 501, 0] = np.inf
    np.save(infinite, array)
    extra = [rows[0], rows[1], dataset.Sample(nothing, "Food", "001"), dataset.Sample(infinite, "Food", "002")]
    dataset.write_labels(tmp_path / "labels.csv", rows + extra)
    metrics = train(tmp_path / "labels.csv", tmp_path / "run", TrainConfig(max_epochs=1, hparams={"hidden": 8},
                                                                         test_signers=("004",)), progress=False)
    err = capsys.readouterr().err
    for path in (rows[0].path, rows[1].path):
        assert f"warning: {path}: listed 2 times in {tmp_path / 'labels.csv'}; used once" in err, err
    assert f"warning: skipping {nothing}: no usable frames" in err and f"warning: skipping {infinite}: an infinite" in err
    assert metrics is not None and sum(metrics["split"]["sizes"].values()) == len(rows)
    assert len(json.loads((tmp_path / "run" / "split.json").read_text())["skipped_files"]) == 2
    dataset.write_labels(tmp_path / "labels.csv", rows + [dataset.Sample(rows[0].path, "Green", rows[0].signer)])
    with pytest.raises(SignrecError, match=f"{re.escape(str(rows[0].path))}: listed twice in .*, as 'Accept' by "
                                           "signer 001 and as 'Green' by signer 001"):
        train(tmp_path / "labels.csv", tmp_path / "run2", TrainConfig(max_epochs=1), progress=False)
    with pytest.raises(SignrecError, match="in more than one of train, validation and test"):
        dataset.Split(rows[:2], rows[1:3], [], "made by hand")
