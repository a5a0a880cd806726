"""`signrec predict --explain` on real MLR511 video: why no sign, and the nearest training examples."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from conftest import TINY_SIGNERS
from signrec.cli import main


def strip_without_person(clip: Path, out: Path) -> Path:
    """The clip's left edge only: the room, no one in it."""
    cap = cv2.VideoCapture(str(clip))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), 15.0, (160, 360))
    while (ok := cap.read())[0]:
        writer.write(np.ascontiguousarray(ok[1][:, :160]))
    writer.release()
    return out


def test_a_clip_with_no_person_says_so(shared_data, tmp_path, mlr511_tiny_model, capsys):
    clip = strip_without_person(shared_data / "mlr511_arsl/videos/user08/G01/R01.mp4", tmp_path / "room.mp4")
    assert main(["predict", str(mlr511_tiny_model), str(clip), "--explain", "--json"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert result["label"] == "unknown", result
    assert [r["reason"] for r in result["explain"]["reasons"]] == ["no_person"]
    assert "no person" in result["explain"]["reasons"][0]["text"] and "no hands" in result["explain"]["reasons"][0]["text"]


def test_a_real_clip_has_nearest_examples_of_its_sign(shared_data, tmp_path, mlr511_tiny_model, capsys):
    test_signer = TINY_SIGNERS["test"][0]
    clip = shared_data / "mlr511_arsl/videos" / test_signer / "G01/R04.mp4"  # Hi, by a signer never trained on
    assert main(["predict", str(mlr511_tiny_model), str(clip), "--explain", "--explain-out", str(tmp_path),
                 "--json"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    nearest = result["explain"]["nearest"]
    assert len(nearest) == 3 and nearest[0]["label"] == "Hi", nearest
    assert all(n["signer"] in TINY_SIGNERS["train"] for n in nearest)
    picture = cv2.imread(result["explain"]["picture"])
    assert picture is not None and picture.shape[:2] == (4 * 182, 4 * 182)  # the input and 3 examples, 4 frames each
