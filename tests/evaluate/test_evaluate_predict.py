"""Evaluate and predict on real MLR511 videos, extracted with MediaPipe inside the test."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from learning_data import mlr511_videos
from signrec import cli
from signrec.evaluate.metrics import trained_signers
from signrec.evaluate.plots import display_label, plot_confusion, read_log
from signrec.landmarks import dataset
from signrec.model.artifact import Classifier
from signrec.recognize.predict import UNKNOWN, predict_files
from signrec.train.config import TrainConfig
from signrec.train.run import train
from signrec.video.batch import open_dataset

SIGNS = ("Hi", "Sleep")


@pytest.fixture(scope="module")
def trained(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    """A 2-sign model trained on 12 real videos of user05-user07 (user07 validates); videos cached in tmp."""
    root = tmp_path_factory.mktemp("mlr511")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIGNREC_CACHE", str(root / "cache"))
        videos = mlr511_videos(shared_data, root / "train" / "labels.csv", SIGNS, ("user05", "user06", "user07"), ("R01", "R02"))
        config = TrainConfig(val_signers=("user07",), max_epochs=30, patience=30, batch_size=4, hparams={"hidden": 32})
        train(open_dataset(videos, progress=False), root / "run", config, progress=False)
        yield root


def test_evaluate_on_videos_of_an_unseen_signer(trained: Path, shared_data: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("SIGNREC_CACHE", str(trained / "cache"))
    test_csv = mlr511_videos(shared_data, trained / "test" / "labels.csv", SIGNS, ("user08",), ("R01", "R02"))
    out = trained / "eval"
    assert cli.main(["evaluate", str(trained / "run" / "model"), str(test_csv), "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 4 and report["bad_files"] == []
    assert report["top1"] >= 0.75, report  # two distinct signs by a person the model never saw
    assert set(report["per_class"]) == set(SIGNS)
    assert len(report["misclassified"]) == round(4 * (1 - report["top1"]))
    for name in ("report.json", "misclassified.csv", "confusion.png", "learning_curves.png"):
        assert (out / name).stat().st_size > 0, name
    assert json.loads((out / "report.json").read_text())["macro_f1"] == report["macro_f1"]
    # The human-readable form names the files and the per-class figures.
    assert cli.main(["evaluate", str(trained / "run" / "model"), str(test_csv), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "top-1" in text and "confusion.png" in text and "Sleep" in text


def test_extract_writes_shards_and_evaluate_streams_them(trained: Path, shared_data: Path, capsys,
                                                        monkeypatch) -> None:
    """`extract --shards URL` then `evaluate MODEL URL`: the same scores as from the videos, read `CHUNK` at a time."""
    from signrec.evaluate import report as report_module

    monkeypatch.setenv("SIGNREC_CACHE", str(trained / "cache"))
    test_csv = mlr511_videos(shared_data, trained / "test-shards" / "labels.csv", SIGNS, ("user08",), ("R01", "R02"))
    url = "memory://signrec-evaluate/user08"
    assert cli.main(["extract", str(test_csv), "--out", str(trained / "test-npy"), "--shards", url, "--json"]) == 0
    extracted = json.loads(capsys.readouterr().out)
    assert extracted["extracted"] == 4 and extracted["shards"]["packed"] == 4 and extracted["shards"]["out"] == url
    model = str(trained / "run" / "model")
    assert cli.main(["evaluate", model, str(test_csv), "--out", str(trained / "eval-videos"), "--json"]) == 0
    from_videos = json.loads(capsys.readouterr().out)
    monkeypatch.setattr(report_module, "CHUNK", 3)  # two chunks: the streamed path, not one batch
    assert cli.main(["evaluate", model, url, "--out", str(trained / "eval-shards"), "--json"]) == 0
    from_shards = json.loads(capsys.readouterr().out)
    for key in ("n", "top1", "top5", "macro_f1", "per_class", "bad_files"):
        assert from_shards[key] == from_videos[key], key
    assert all(w["path"].startswith(f"{url}#") for w in from_shards["misclassified"])


def test_evaluate_names_videos_and_warns_of_signers_the_model_has_seen(trained: Path, shared_data: Path, capsys,
                                                                      monkeypatch) -> None:
    monkeypatch.setenv("SIGNREC_CACHE", str(trained / "cache"))
    model = str(trained / "run" / "model")
    # The training videos (cached by the fixture) are scored, with a warning naming who the model saw.
    train_csv = trained / "train" / "labels.csv"
    assert cli.main(["evaluate", model, str(train_csv), "--out", str(trained / "eval-seen"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 12
    assert report["seen_signers"] == {"clips": 12, "train": ["user05", "user06"], "val": ["user07"]}
    assert cli.main(["evaluate", model, str(train_csv), "--out", str(trained / "eval-seen")]) == 0
    assert "WARNING: 12 of 12 clips are by signers the model has seen (trained on user05, user06; " \
           "early-stopped on user07)" in capsys.readouterr().out
    # A model saved before model.json held its split still finds it in the run folder's split.json.
    classifier = Classifier.load(model)
    classifier.meta["training"]["split"] = "by signer: test=[] val=['user07']"
    saved_split = json.loads((trained / "run" / "split.json").read_text(encoding="utf-8"))
    assert trained_signers(classifier, saved_split) == {"train": ["user05", "user06"], "val": ["user07"]}
    assert trained_signers(classifier) == {"train": [], "val": []}
    # Misclassified clips are named by their videos, not by their cached landmark files: with the two signs'
    # labels swapped, the unseen signer's clips are (mostly) misclassified.
    test_csv = mlr511_videos(shared_data, trained / "test" / "labels.csv", SIGNS, ("user08",), ("R01", "R02"))
    swap = dict(zip(SIGNS, reversed(SIGNS), strict=True))
    dataset.write_labels(test_csv, [dataclasses.replace(s, label=swap[s.label]) for s in dataset.read_labels(test_csv)])
    try:
        out = trained / "eval-swapped"
        assert cli.main(["evaluate", model, str(test_csv), "--out", str(out), "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        videos = {str(s.path) for s in dataset.read_labels(test_csv)}
        assert report["misclassified"] and {w["path"] for w in report["misclassified"]} <= videos
        assert report["seen_signers"]["clips"] == 0
        with open(out / "misclassified.csv", newline="", encoding="utf-8") as fh:
            assert [row["path"] for row in csv.DictReader(fh)] == [w["path"] for w in report["misclassified"]]
        assert cli.main(["evaluate", model, str(test_csv), "--out", str(out)]) == 0
        text = capsys.readouterr().out
        assert f"  {report['misclassified'][0]['path']}: " in text and "WARNING" not in text
    finally:
        mlr511_videos(shared_data, test_csv, SIGNS, ("user08",), ("R01", "R02"))


def test_evaluate_one_clip_and_labels_the_model_does_not_know(trained: Path, shared_data: Path, tmp_path: Path,
                                                              capsys, monkeypatch) -> None:
    monkeypatch.setenv("SIGNREC_CACHE", str(trained / "cache"))
    test_csv = mlr511_videos(shared_data, trained / "test" / "labels.csv", SIGNS, ("user08",), ("R01", "R02"))
    clips = open_dataset(test_csv, progress=False).samples
    model = str(trained / "run" / "model")
    one = tmp_path / "one.csv"
    dataset.write_labels(one, clips[:1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scikit-learn's warning on a single class is not the user's concern
        assert cli.main(["evaluate", model, str(one), "--out", str(tmp_path / "eval")]) == 0
    assert "\n1 clip: top-1" in "\n" + capsys.readouterr().out
    # None of the labels known: the answer says so and lists both sides.
    strange = tmp_path / "strange.csv"
    dataset.write_labels(strange, [dataclasses.replace(s, label=f"Eat{i % 2}") for i, s in enumerate(clips)])
    assert cli.main(["evaluate", model, str(strange), "--out", str(tmp_path / "eval")]) == 2
    assert "none of the dataset's labels ('Eat0', 'Eat1') are among the model's ('Hi', 'Sleep')" \
        in capsys.readouterr().err
    # Some unknown: those clips are left out, and the report says how many and why.
    mixed = tmp_path / "mixed.csv"
    dataset.write_labels(mixed, [clips[0], dataclasses.replace(clips[1], label="Eat")])
    assert cli.main(["evaluate", model, str(mixed), "--out", str(tmp_path / "eval"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 1 and report["skipped_unknown_label"] == 1 and report["unknown_labels"] == ["Eat"]
    assert cli.main(["evaluate", model, str(mixed), "--out", str(tmp_path / "eval")]) == 0
    assert "left out 1 clip: their labels ('Eat') are not among the model's" in capsys.readouterr().out


def test_predict_videos_and_landmarks_keeps_going_past_bad_files(trained: Path, shared_data: Path, capsys,
                                                                  monkeypatch) -> None:
    monkeypatch.setenv("SIGNREC_CACHE", str(trained / "cache"))
    test_csv = mlr511_videos(shared_data, trained / "test" / "labels.csv", SIGNS, ("user08",), ("R01", "R02"))
    [clip] = [s for s in open_dataset(test_csv, progress=False).samples
              if s.label == "Hi" and s.extra["repetition"] == "R01"]
    video = trained / "test" / "videos" / "user08" / "G01" / "R01.mp4"  # the clip's video, unseen signer
    bad = trained / "broken.mp4"
    bad.write_bytes(b"not a video at all")
    missing = trained / "missing.npy"
    model = str(trained / "run" / "model")
    status = cli.main(["predict", model, str(video), str(bad), str(clip.path), str(missing), "--top-k", "2", "--json"])
    assert status == 1
    results = json.loads(capsys.readouterr().out)
    assert [r["path"] for r in results] == [str(video), str(bad), str(clip.path), str(missing)]
    for good in (results[0], results[2]):
        assert good["label"] in (*SIGNS, UNKNOWN) and len(good["top"]) == 2
        assert good["top"][0]["p"] >= good["top"][1]["p"] and good["confidence"] == good["top"][0]["p"]
    assert "broken.mp4" in results[1]["error"] and "missing.npy" in results[3]["error"]
    # The video, extracted on the fly, gets the same answer as its cached landmarks.
    assert results[0]["top"][0]["label"] == results[2]["top"][0]["label"]
    assert results[0]["confidence"] == pytest.approx(results[2]["confidence"], abs=1e-4)
    # The table names the failure too.
    assert cli.main(["predict", model, str(clip.path), str(missing)]) == 1
    assert "ERROR" in capsys.readouterr().out



def test_the_command_keeps_mediapipe_log_lines_off_the_terminal(trained: Path) -> None:
    """MediaPipe's C++ warnings (about ten a video) are dropped; signrec's own errors still show, and
    SIGNREC_NATIVE_LOGS=1 brings MediaPipe's back."""
    video = trained / "test" / "videos" / "user08" / "G01" / "R01.mp4"  # made by the test above
    command = [sys.executable, "-m", "signrec.cli", "predict", str(trained / "run" / "model"), str(video), "nothing.npy"]
    env = {k: v for k, v in os.environ.items() if k != "SIGNREC_NATIVE_LOGS"}
    quiet = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert quiet.returncode == 1, quiet.stderr[-2000:]
    assert "R01.mp4" in quiet.stdout and "nothing.npy" in quiet.stdout
    assert "inference_feedback_manager" not in quiet.stderr and "W0000" not in quiet.stderr, quiet.stderr[-2000:]
    loud = subprocess.run(command, capture_output=True, text=True, env={**env, "SIGNREC_NATIVE_LOGS": "1"}, timeout=300)
    assert loud.returncode == 1 and "inference_feedback_manager" in loud.stderr
    assert loud.stdout == quiet.stdout
    # A crash inside native code still says where it happened, through the real stderr.
    crash = subprocess.run([sys.executable, "-c", "import os; from signrec.cli import native_logs_hidden\n"
                            "with native_logs_hidden(): os.abort()"], capture_output=True, text=True, env=env, timeout=60)
    assert crash.returncode != 0 and "Fatal Python error: Aborted" in crash.stderr, crash.stderr

def test_threshold_gives_unknown(trained: Path) -> None:
    classifier = Classifier.load(trained / "run" / "model")
    npy = next((trained / "cache").rglob("*.npy"))
    [sure] = predict_files(classifier, [npy], threshold=0.0)
    [unsure] = predict_files(classifier, [npy], threshold=1.01)
    assert sure["label"] in SIGNS and unsure["label"] == UNKNOWN
    assert unsure["top"] == sure["top"]


def test_predict_continuous_prints_words_with_times(trained: Path, shared_data: Path, capsys) -> None:
    video = shared_data / "mlr511_arsl" / "videos" / "user08" / "G01" / "R04.mp4"  # 61 frames at 15 fps
    assert cli.main(["predict", str(trained / "run" / "model"), str(video), "--continuous", "--json"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert result["fps"] == 15.0 and result["words"], "the one sign in the clip is found, sure or not"
    for word in result["words"]:
        assert 0 <= word["start"] <= word["end"] <= 61 / 15 + 0.5
        assert word["label"] in (*SIGNS, UNKNOWN)
    npy = next((trained / "cache").rglob("*.npy"))
    words = {}
    for threshold in ("0.5", "1"):  # a threshold of 1 keeps every word, each one unknown
        assert cli.main(["predict", str(trained / "run" / "model"), str(npy), "--continuous", "--fps", "15",
                         "--threshold", threshold, "--json"]) == 0
        words[threshold] = [w["label"] for w in json.loads(capsys.readouterr().out)[0]["words"]]
    assert words["0.5"] and words["1"] == [UNKNOWN] * len(words["0.5"])
    assert cli.main(["predict", str(trained / "run" / "model"), str(npy), "--continuous"]) == 1
    assert "--fps" in capsys.readouterr().out


def test_learning_curve_log_and_unicode_labels(trained: Path, tmp_path: Path) -> None:
    series = read_log(trained / "run" / "logs" / "metrics.csv")
    assert {"train_loss", "val_loss", "val_acc"} <= set(series) and any(k.startswith("lr") for k in series)
    assert list(series["val_loss"]) == sorted(series["val_loss"])
    labels = ["žuta", "ljubičasta", "smeđe", "مرحبا", "Hi"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing glyph is a warning in matplotlib
        plot_confusion(np.array([0, 1, 2, 3, 4]), np.array([0, 2, 2, 3, 4]), labels, tmp_path / "cm.png")
    assert (tmp_path / "cm.png").stat().st_size > 0
    assert display_label("مرحبا") == "ابحرم" and display_label("smeđe") == "smeđe"
    assert dataset.read_labels(trained / "train" / "labels.csv")[0].label in SIGNS


def test_videos_are_extracted_with_the_landmark_models_of_the_training_data(trained: Path, shared_data: Path,
                                                                              capsys, monkeypatch) -> None:
    monkeypatch.setenv("SIGNREC_CACHE", str(trained / "cache"))
    meta = json.loads((trained / "run" / "model" / "model.json").read_text())
    assert meta["landmarks"] == {"face": True, "hand_model": "full"}  # from the training data's manifest
    # The same weights, declared as trained on landmarks without the face and with lite hands.
    fast = trained / "fast"
    fast.mkdir()
    (fast / "model.safetensors").write_bytes((trained / "run" / "model" / "model.safetensors").read_bytes())
    (fast / "model.json").write_text(json.dumps({**meta, "landmarks": {"face": False, "hand_model": "lite"}}))
    test_csv = mlr511_videos(shared_data, trained / "test" / "labels.csv", SIGNS, ("user08",), ("R01", "R02"))
    assert cli.main(["evaluate", str(fast), str(test_csv), "--out", str(trained / "fast-eval"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 4
    [made] = [json.loads(m.read_text())["extractor"]["settings"] for m in (trained / "cache").rglob("manifest.json")
              if not json.loads(m.read_text())["extractor"]["settings"]["face"]]
    assert made["hand_model"] == "lite"
    # Landmarks made the default way are refused, with the reason.
    default_csv = open_dataset(test_csv, progress=False).labels_csv
    assert cli.main(["evaluate", str(fast), str(default_csv), "--out", str(trained / "fast-eval")]) == 2
    assert "extract again with those settings" in capsys.readouterr().err
