"""The model card: what a new user can expect, from model.json and a leave-one-signer-out run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from signrec import cli
from signrec.evaluate.card import card_text, expected_accuracy, model_card
from signrec.model.artifact import Classifier


def test_card_of_a_held_out_signer_and_of_a_loso_run() -> None:
    meta = {"model": {"name": "lstm"}, "labels": ["a", "b"], "metrics": {"test": {"n": 20, "top1": 0.9, "top5": 1}},
            "training": {"split": {"signers": {"train": ["s1", "s2"], "val": ["s3"], "test": ["s4"]}}},
            "unknown": {"threshold": 0.35, "keeps": 0.95, "calibrated_on": "30 validation clips (s3)"}}
    card = model_card(meta)
    assert card["new_person"] == {"how": "held-out signer", "signers": ["s4"], "clips": 20, "top1": 0.9, "top5": 1}
    assert "top-1 90.0% on 20 clips of s4" in card_text(card)
    assert "below 0.35 confidence are unknown" in card_text(card)
    loso = {"folds": [{"signer": s, "top1": t} for s, t in (("s1", 0.8), ("s2", 1.0), ("s3", 0.9))]}
    card = model_card({**meta, "card": card}, loso, {"3": {"mean": 0.99, "min": 0.97, "max": 1.0}})
    assert card["new_person"]["top1_mean"] == 0.9 and card["new_person"]["top1_min"] == 0.8
    text = card_text(card)
    assert "top-1 90.0% on average, 80% to 100% (leave one signer out, 3 signers)" in text
    assert "after enrolling 3 clips per sign: top-1 99.0%" in text
    assert model_card({"labels": ["a"]})["new_person"]["how"].startswith("not measured")


def test_expected_accuracy_in_one_line_for_a_base_and_a_personal_model() -> None:
    base = {"new_person": {"how": "leave one signer out", "folds": 3, "top1_mean": 0.9, "top1_min": 0.8,
                           "top1_max": 1.0}, "after_enrollment": {"1": {"mean": 0.97}, "3": {"mean": 0.99}}}
    assert expected_accuracy(base) == "top-1 90.0% on a new person (80% to 100%, leave one signer out, 3 signers)"
    personal = {"enrolled": {"signer": "ana", "signs": {"a": 3, "b": 4}}}
    assert expected_accuracy(personal, base).startswith("top-1 99.0% expected (benchmark: enrolling 3 clips per sign")
    two = {"enrolled": {"signer": "ana", "signs": {"a": 2, "b": 4}}}
    assert expected_accuracy(two, base).startswith("top-1 97.0% expected (benchmark: enrolling 1 clip per sign")
    unmeasured = {"new_person": {"how": "not measured"}}
    assert expected_accuracy(personal, unmeasured) == ("not measured for this person; the base model's: not "
                                                       "measured (train with --test-signers, or make the card from "
                                                       "a --loso run)")


def test_card_command_writes_model_json_and_evaluate_shows_it(mlr511_tiny_model: Path, mlr511_tiny_landmarks: Path,
                                                              tmp_path: Path, capsys) -> None:
    model = tmp_path / "model"
    shutil.copytree(mlr511_tiny_model, model)
    digest = Classifier.load(model).weights_digest()
    run = tmp_path / "loso"
    run.mkdir()
    (run / "loso.json").write_text(json.dumps({"folds": [{"signer": "user03", "top1": 0.75},
                                                         {"signer": "user04", "top1": 0.95}]}))
    assert cli.main(["card", str(model), "--loso", str(run), "--write", "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["new_person"]["how"] == "leave one signer out" and card["new_person"]["top1_mean"] == 0.85
    reloaded = Classifier.load(model)
    assert reloaded.meta["card"] == card and reloaded.weights_digest() == digest  # only model.json changed
    assert cli.main(["evaluate", str(model), str(mlr511_tiny_landmarks), "--out", str(tmp_path / "eval")]) == 0
    assert "on a new person: top-1 85.0% on average, 75% to 95%" in capsys.readouterr().out
    assert cli.main(["card", str(model), "--loso", str(tmp_path)]) == 2
    assert "no loso.json" in capsys.readouterr().err
