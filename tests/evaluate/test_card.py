"""The model card gathers what a model folder and its run measured, and says what is missing."""

from __future__ import annotations

import json

from signrec.cli import main
from signrec.model.artifact import Classifier
from signrec.model.features import FeatureSpec
from signrec.model.networks import default_hparams


def test_card_of_a_loso_fold_with_a_calibrated_threshold(tmp_path, capsys):
    run = tmp_path / "run"
    meta = {"training": {"data": "d/labels.csv", "split": {"signers": {"train": ["a", "b"], "val": ["c"],
                                                                       "test": ["d"]}}},
            "metrics": {"test": {"top1": 0.9, "n": 20}},
            "unknown": {"threshold": 0.55, "keeps": 0.95, "calibrated_on": "20 validation clips (signers c)"}}
    Classifier(["Hi", "Eat"], FeatureSpec(), "lstm", default_hparams("lstm"), meta=meta).save(run / "fold-d" / "model")
    (run / "loso.json").write_text(json.dumps({"folds": [{"top1": 0.9}, {"top1": 0.8}], "mean": {"top1": 0.85}}))
    assert main(["card", str(run / "fold-d" / "model")]) == 0
    out = capsys.readouterr().out
    assert "each of 2 signers held out in turn): 85.0% top-1 on average, 80% to 90%" in out
    assert "on held-out signer(s) d: 90.0% top-1 (20 clips)" in out
    assert "'unknown' below probability 0.55, which keeps 95% of 20 validation clips (signers c)" in out
    assert main(["card", str(run / "fold-d" / "model"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["loso"]["folds"] == 2


def test_card_says_what_was_not_measured(tmp_path, capsys):
    Classifier(["Hi"], FeatureSpec(), "lstm", default_hparams("lstm")).save(tmp_path / "model")
    assert main(["card", str(tmp_path / "model")]) == 0
    out = capsys.readouterr().out
    assert "accuracy on a new person: not measured" in out and "no calibrated threshold" in out
