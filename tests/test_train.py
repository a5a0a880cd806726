"""Training on small real subsets: learning, the run folder, resume, LOSO and 2-process DDP."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from learning_data import lsa64_subset
from signrec import SignrecError, cli
from signrec.artifact import Classifier
from signrec.train import TrainConfig, duration, train, train_loso

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


def test_resume_continues_from_last_checkpoint(lsa64_tiny: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    args = ["train", str(lsa64_tiny), "--out", str(run), "--max-epochs", "2", "--hparam", "hidden=16",
            "--optimizer", "adamw", "--lr", "0.003", "--schedule", "cosine", "--json"]
    assert cli.main(args) == 0
    assert json.loads(capsys.readouterr().out)["epochs"] == 2
    assert cli.main(["train", str(lsa64_tiny), "--out", str(run), "--resume", "--max-epochs", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["epochs"] == 3
    config = json.loads((run / "config.json").read_text())["config"]
    assert config["optimizer"] == "adamw" and config["schedule"] == "cosine"
    log = (run / "logs" / "metrics.csv").read_text().splitlines()
    assert {line.split(",")[0] for line in log[1:]} >= {"0", "1", "2"}


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
                                                                                 capsys) -> None:
    assert cli.main(["train", str(lsa64_tiny), "--out", str(tmp_path / "run"), "--max-epochs", "2",
                     "--hparam", "hidden=16"]) == 0
    out, err = capsys.readouterr()
    assert err.startswith("split: by signer: train 001, 002 (12 clips), val 003 (6 clips), test 004 (6 clips)\n")
    assert "Epoch 1" in err and "Epoch" not in out and "it/s" not in out
    assert re.match(r"trained lstm for 2 epochs in \d\.\d s \(best epoch \d\)\n", out), out
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
    # Folds trained side by side, one process each, give the same models as one after the other.
    assert cli.main(["train", str(lsa64_tiny), "--out", str(tmp_path / "jobs"), "--loso", "--jobs", "2",
                     "--max-epochs", "1", "--hparam", "hidden=16", "--schedule", "plateau", "--mixup", "0.4",
                     "--json"]) == 0
    parallel = json.loads(capsys.readouterr().out)
    assert [(r["signer"], r["top1"], r["epochs"]) for r in parallel["folds"]] == \
        [(r["signer"], r["top1"], r["epochs"]) for r in summary["folds"]]
    assert parallel["mean"]["top1"] == summary["mean"]["top1"]


def test_two_process_ddp(lsa64_tiny: Path, tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, "-m", "signrec.cli", "train", str(lsa64_tiny), "--out", str(run),
                           "--devices", "2", "--max-epochs", "1", "--hparam", "hidden=16", "--json"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
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
