"""Input and output problems end a command with one line naming the file and exit 2, never a traceback: an --out
that can not be written, broken weights, landmark values that are no coordinates."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from signrec.cli import main


@pytest.fixture(scope="module")
def npy(mlr511_tiny_landmarks: Path) -> Path:
    return next((mlr511_tiny_landmarks.parent / "user07" / "Hi").glob("*.npy"))


def one_line(capsys: pytest.CaptureFixture[str], prog: str, says: str) -> None:
    err = capsys.readouterr().err
    last = err.splitlines()[-1]  # after what it had said until then (train: its split)
    assert last.startswith(f"signrec {prog}: error: ") and says in last and "Traceback" not in err, err


def test_an_out_that_can_not_be_written(mlr511_tiny_model: Path, mlr511_tiny_landmarks: Path, npy: Path,
                                        shared_data: Path, tmp_path: Path, capsys) -> None:
    """Under a file, where no folder can be made (root may write a read-only folder, so that is not tested)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for prog, args in (
        ("show", [str(npy), "--out", str(blocker / "x.png")]),
        ("import", ["mpdata", str(shared_data / "tutorial_mp_data" / "MP_Data"), "--out", str(blocker / "d")]),
        ("evaluate", [str(mlr511_tiny_model), str(mlr511_tiny_landmarks), "--out", str(blocker / "e")]),
        ("export", [str(mlr511_tiny_model), "--out", str(blocker / "m.onnx")]),
        ("train", [str(mlr511_tiny_landmarks), "--out", str(blocker / "run"), "--max-epochs", "1"]),
    ):
        assert main([prog, *args]) == 2, prog
        one_line(capsys, prog, f"{blocker}")


def test_export_into_an_existing_folder(mlr511_tiny_model: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "out").mkdir()
    assert main(["export", str(mlr511_tiny_model), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "model.onnx").is_file() and not list((tmp_path / "out").glob(".*"))


@pytest.mark.parametrize(("weights", "says"), [
    (np.random.default_rng(0).bytes(5000), "not a safetensors file (its first 8 bytes give a header of"),
    (len(b"[1, 2]").to_bytes(8, "little") + b"[1, 2]", "not a safetensors file (its header is not a JSON object"),
])
def test_broken_weights(mlr511_tiny_model: Path, npy: Path, tmp_path: Path, weights: bytes, says: str,
                        capsys) -> None:
    model = shutil.copytree(mlr511_tiny_model, tmp_path / "model")
    (model / "model.safetensors").write_bytes(weights)
    for prog, args in (("predict", [str(model), str(npy)]), ("evaluate", [str(model), str(npy.parents[2] /
                                                                                          "labels.csv")]),
                       ("export", [str(model)]), ("serve", [str(model), "--port", "1"])):
        assert main([prog, *args]) == 2, prog
        one_line(capsys, prog, f"{model / 'model.safetensors'}: {says}")


def test_show_refuses_values_that_are_no_coordinates(tmp_path: Path, capsys) -> None:
    array = np.full((5, 543, 3), 0.5, np.float32)
    array[2, 3, 0] = np.inf
    np.save(tmp_path / "inf.npy", array)
    assert main(["show", str(tmp_path / "inf.npy"), "--out", str(tmp_path / "x.png")]) == 2
    one_line(capsys, "show", "inf.npy: an infinite value at frame 2, point 3")
    assert not (tmp_path / "x.png").exists()
