"""Importers and the MP_Data export, on the real samples in shared data."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from signrec import landmarks
from signrec.cli import main
from signrec.landmarks import formats
from signrec.landmarks.dataset import read_labels

POSE_VISIBILITY = np.arange(3, 132, 4)


def run_json(capsys, *argv: str) -> tuple[int, dict]:
    code = main([*map(str, argv), "--json"])
    return code, json.loads(capsys.readouterr().out)


def mpdata_frames(folder: Path) -> np.ndarray:
    return np.stack([np.load(folder / f"{i}.npy") for i in range(len(list(folder.glob("*.npy"))))])


@pytest.fixture(scope="module")
def mp_data(shared_data: Path) -> Path:
    return shared_data / "tutorial_mp_data" / "MP_Data"


def test_mpdata_import_real(mp_data: Path, tmp_path: Path, capsys) -> None:
    code, report = run_json(capsys, "import", "mpdata", mp_data, "--out", tmp_path)
    assert (code, report["converted"], report["failed"]) == (0, 30, 0)
    samples = read_labels(tmp_path / "labels.csv")
    assert sorted({s.label for s in samples}) == ["hello", "help", "thank you"]
    hello0 = next(s for s in samples if s.label == "hello" and s.extra["sequence"] == "0")
    array = landmarks.load(hello0.path)
    source = mpdata_frames(mp_data / "hello" / "0")
    assert array.shape == (30, 543, 3)
    # frames in numeric order (10.npy after 9.npy, not after 1.npy); values kept exactly
    np.testing.assert_array_equal(array[10, landmarks.PARTS["face"]].ravel(), source[10, 132:1536])
    np.testing.assert_array_equal(array[:, :33].reshape(30, 33, 3), source[:, :132].reshape(30, 33, 4)[..., :3])
    # a part stored as zeros is NaN, and nowhere else
    left_zero = (source[:, 1536:1599] == 0).all(axis=1)
    assert left_zero[:9].all() and not left_zero[9:].any()
    assert np.isnan(array[:, landmarks.PARTS["left_hand"]]).all(axis=(1, 2)).tolist() == left_zero.tolist()
    assert np.isnan(array[:, landmarks.PARTS["right_hand"]]).all()
    assert not np.isnan(array[:, :501]).any()


def test_mpdata_round_trip_real(mp_data: Path, tmp_path: Path, capsys) -> None:
    """MP_Data -> landmarks -> MP_Data gives back every value but pose visibility (not in our layout)."""
    for seq in sorted(mp_data.glob("*/*")):
        source = mpdata_frames(seq)
        back = formats.to_mpdata_frames(formats.from_mpdata_frames(source))
        keep = np.ones(formats.MPDATA_SIZE, bool)
        keep[POSE_VISIBILITY] = False
        np.testing.assert_array_equal(back[:, keep], source[:, keep], err_msg=str(seq))
        assert set(np.unique(back[:, POSE_VISIBILITY])) <= {0.0, 1.0}
    # the same through the two commands
    assert main(["import", "mpdata", str(mp_data.parent), "--out", str(tmp_path / "lm")]) == 0
    capsys.readouterr()
    code, report = run_json(capsys, "export-mpdata", tmp_path / "lm", "--out", tmp_path / "MP_Data")
    assert (code, report["converted"]) == (0, 30)
    for seq in sorted(mp_data.glob("*/*")):
        out = tmp_path / "MP_Data" / seq.parent.name / seq.name
        assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in seq.iterdir())
        exported, source = mpdata_frames(out), mpdata_frames(seq)
        assert exported.dtype == np.float32 and exported.shape == source.shape
        np.testing.assert_array_equal(np.delete(exported, POSE_VISIBILITY, 1), np.delete(source, POSE_VISIBILITY, 1))


def test_kaggle_import_real(shared_data: Path, tmp_path: Path, capsys) -> None:
    src = shared_data / "kaggle_islr_schema"
    code, report = run_json(capsys, "import", "kaggle", src / "train.csv", "--out", tmp_path)
    assert (code, report["converted"], report["failed"]) == (0, 48, 0)
    samples = read_labels(tmp_path / "labels.csv")
    index = list(csv.DictReader((src / "train.csv").read_text(encoding="utf-8").splitlines()))
    assert [(s.label, s.signer, s.extra["sequence_id"]) for s in samples] == \
        [(r["sign"], r["participant_id"], r["sequence_id"]) for r in index]
    array = landmarks.load(samples[0].path)
    table = pq.read_table(src / index[0]["path"]).to_pandas()
    assert array.shape == (table["frame"].nunique(), 543, 3)
    for kind, i in (("face", 5), ("left_hand", 3), ("pose", 0), ("right_hand", 20)):
        row = table[(table["type"] == kind) & (table["landmark_index"] == i)].iloc[0]
        np.testing.assert_allclose(array[0, landmarks.PARTS[kind].start + i], row[["x", "y", "z"]].astype(float),
                                   rtol=1e-6)
    # placed by type, each hand's wrist lands on the pose's wrist of the same side, in every sequence
    for s in samples:
        frame = landmarks.load(s.path)[0]
        for hand, pose_wrist in (("left_hand", landmarks.POSE_LEFT_WRIST), ("right_hand", landmarks.POSE_RIGHT_WRIST)):
            assert np.linalg.norm(frame[landmarks.PARTS[hand].start, :2] - frame[pose_wrist, :2]) < 0.08, s.path


def test_kaggle_order_and_nan(shared_data: Path) -> None:
    """Kaggle orders parts face, left hand, pose, right hand and writes NaN for a missing hand."""
    table = pq.read_table(shared_data / "kaggle_islr_schema/train_landmark_files/100/1015.parquet").to_pandas()
    expected = formats.from_kaggle_table(table)
    order = {"face": 0, "left_hand": 1, "pose": 2, "right_hand": 3}
    kaggle_order = table.sort_values(["type", "landmark_index"], key=lambda c: c.map(order) if c.name == "type" else c)
    kaggle_order.loc[kaggle_order["type"] == "right_hand", ["x", "y", "z"]] = np.nan
    array = formats.from_kaggle_table(kaggle_order)
    assert np.isnan(array[:, landmarks.PARTS["right_hand"]]).all()
    np.testing.assert_array_equal(array[:, :522], expected[:, :522])


def test_hands_import_real(shared_data: Path, tmp_path: Path, capsys) -> None:
    src = shared_data / "lsa64_hands"
    code, report = run_json(capsys, "import", "hands", src, "--out", tmp_path)
    assert (code, report["converted"], report["failed"]) == (0, 1000, 0)
    samples = read_labels(tmp_path / "labels.csv")
    originals = read_labels(src / "labels.csv")
    assert [(s.label, s.signer, s.extra) for s in samples] == [(s.label, s.signer, s.extra) for s in originals]
    assert set(samples[0].extra) == {"lsa64_sign_id", "repetition"}
    seen_missing_hand = False
    for new, old in zip(samples[::25], originals[::25], strict=True):
        hands, array = np.load(old.path), landmarks.load(new.path)
        assert array.shape == (len(hands), 543, 3)
        assert np.isnan(array[:, :501]).all()  # pose and face are not in this format
        for i, part in enumerate(("left_hand", "right_hand")):
            zero = (hands[:, i] == 0).all(axis=(1, 2))
            got = array[:, landmarks.PARTS[part]]
            assert np.isnan(got).all(axis=(1, 2)).tolist() == zero.tolist()
            np.testing.assert_array_equal(got[~zero], hands[~zero, i])  # shoulder-normalised values kept
            seen_missing_hand |= bool(zero.any() and not zero.all())
    assert seen_missing_hand


def test_bad_files_reported_rest_converted(shared_data: Path, tmp_path: Path, capsys) -> None:
    src = tmp_path / "kaggle"
    shutil.copytree(shared_data / "kaggle_islr_schema", src)
    corrupt = src / "train_landmark_files/100/1015.parquet"
    corrupt.write_bytes(corrupt.read_bytes()[:300])
    (src / "train_landmark_files/100/1017.parquet").unlink()
    code, report = run_json(capsys, "import", "kaggle", src, "--out", tmp_path / "out")
    assert (code, report["converted"], report["failed"]) == (1, 46, 2)
    errors = {Path(e["file"]).name: e["error"] for e in report["errors"]}
    assert "1015.parquet" in errors["1015.parquet"] and "not a readable" in errors["1015.parquet"]
    assert "no such file" in errors["1017.parquet"]
    assert len(read_labels(tmp_path / "out" / "labels.csv")) == 46

    # MP_Data with a frame of the wrong length, and the text report
    mp = tmp_path / "MP_Data"
    shutil.copytree(shared_data / "tutorial_mp_data/MP_Data/help", mp / "help")
    np.save(mp / "help" / "4" / "7.npy", np.zeros(1000, np.float32))
    (mp / ".ipynb_checkpoints" / "0").mkdir(parents=True)  # Jupyter's folders are not actions
    assert main(["import", "mpdata", str(mp), "--out", str(tmp_path / "mp")]) == 1
    text = capsys.readouterr().out
    assert "imported 9 sequence(s)" in text and "1 failed" in text and "7.npy" in text and "1662" in text
    assert {s.label for s in read_labels(tmp_path / "mp" / "labels.csv")} == {"help"}


def test_unicode_labels_and_paths(shared_data: Path, tmp_path: Path, capsys) -> None:
    hands = np.load(shared_data / "lsa64_hands/landmarks/050_001_001.npy")
    data = tmp_path / "podaci ž"
    (data / "ruke").mkdir(parents=True)
    np.save(data / "ruke" / "žuta_č.npy", hands)
    np.save(data / "ruke" / "smeđe.npy", hands[:5, :, :, :2])  # wrong shape
    (data / "labels.csv").write_text("path,label,signer\nruke/žuta_č.npy,žuta,ana\nruke/smeđe.npy,smeđe,ana\n",
                                     encoding="utf-8")
    code, report = run_json(capsys, "import", "hands", data / "labels.csv", "--out", tmp_path / "izlaz ć")
    assert (code, report["converted"], report["failed"]) == (1, 1, 1)
    assert "smeđe.npy" in report["errors"][0]["error"] and "(5, 2, 21, 2)" in report["errors"][0]["error"]
    (sample,) = read_labels(tmp_path / "izlaz ć" / "labels.csv")
    assert (sample.label, sample.signer, sample.path.name) == ("žuta", "ana", "žuta_č.npy")
    assert main(["export-mpdata", str(tmp_path / "izlaz ć"), "--out", str(tmp_path / "MP_Data")]) == 0
    assert (tmp_path / "MP_Data" / "žuta" / "0" / f"{len(hands) - 1}.npy").is_file()
    capsys.readouterr()
    code, report = run_json(capsys, "import", "mpdata", tmp_path / "MP_Data", "--out", tmp_path / "again")
    assert (code, report["converted"]) == (0, 1)
    (again,) = read_labels(tmp_path / "again" / "labels.csv")
    assert again.label == "žuta"
    np.testing.assert_array_equal(landmarks.load(again.path), landmarks.load(sample.path))


def test_pure_conversions_reject_wrong_shapes() -> None:
    with pytest.raises(formats.FormatError, match="1662"):
        formats.from_mpdata_frames(np.zeros((3, 1600)))
    with pytest.raises(formats.FormatError, match=r"\(frames, 2, 21, 3\)"):
        formats.from_hands(np.zeros((3, 21, 3)))
    bad = pa.table({"frame": [0], "type": ["hand"], "landmark_index": [0], "x": [0.1], "y": [0.1], "z": [0.0]})
    with pytest.raises(formats.FormatError, match="unknown landmark type"):
        formats.from_kaggle_table(bad.to_pandas())


def test_import_refuses_to_overwrite_its_source(shared_data: Path, tmp_path: Path, capsys) -> None:
    data = tmp_path / "hands"
    (data / "landmarks").mkdir(parents=True)
    shutil.copy(shared_data / "lsa64_hands/landmarks/050_001_001.npy", data / "landmarks")
    (data / "labels.csv").write_text("path,label\nlandmarks/050_001_001.npy,Accept\n", encoding="utf-8")
    before = (data / "landmarks/050_001_001.npy").read_bytes()
    assert main(["import", "hands", str(data), "--out", str(data)]) == 2
    assert "overwrite the source" in capsys.readouterr().err
    assert (data / "landmarks/050_001_001.npy").read_bytes() == before


def test_hands_import_refuses_a_video_dataset_once(shared_data: Path, tmp_path: Path, capsys) -> None:
    assert main(["import", "hands", str(shared_data / "mlr511_arsl/labels.csv"), "--out", str(tmp_path / "o")]) == 2
    captured = capsys.readouterr()
    assert len(captured.err.splitlines()) == 1 and not captured.out
    assert "800 of 800 rows are videos" in captured.err and "signrec extract" in captured.err
    assert not (tmp_path / "o").exists()


def test_hands_import_warns_of_empty_sequences(shared_data: Path, tmp_path: Path, capsys) -> None:
    """LSA64 has sequences without a hand in any frame: imported (all NaN), but each one said, like extract does."""
    hands = shared_data / "lsa64_hands/landmarks"
    (tmp_path / "notes.npy").write_text("not an array\n")
    rows = [(hands / "050_001_001.npy", "Accept"), (hands / "017_001_001.npy", "Skimmer"), (tmp_path / "notes.npy", "x")]
    (tmp_path / "labels.csv").write_text("path,label\n" + "".join(f"{p},{label}\n" for p, label in rows),
                                         encoding="utf-8")
    code, report = run_json(capsys, "import", "hands", tmp_path / "labels.csv", "--out", tmp_path / "out")
    assert (code, report["converted"], report["failed"]) == (1, 2, 1)
    assert report["warnings"] == [{"file": str(hands / "017_001_001.npy"), "warning": "no landmarks in any frame: all NaN"}]
    assert np.isnan(landmarks.load(tmp_path / "out/landmarks/017_001_001.npy")).all()
    # a file that is no .npy at all is called that, not a pickle NumPy refused to load
    assert report["errors"][0]["error"] == f"{tmp_path / 'notes.npy'}: not a landmark .npy file (no NumPy .npy header; 13 bytes)"
    assert main(["import", "hands", str(tmp_path / "labels.csv"), "--out", str(tmp_path / "out")]) == 1
    text = capsys.readouterr().out
    assert "1 failed, 1 with warnings" in text and f"  warning {hands / '017_001_001.npy'}: no landmarks" in text


def labelled_hands(shared_data: Path, folder: Path, labels: list[str]) -> Path:
    """A hands dataset of real LSA64 sequences, one per label."""
    files = sorted((shared_data / "lsa64_hands/landmarks").glob("050_*.npy"))[:len(labels)]
    folder.mkdir()
    csv_path = folder / "labels.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([("path", "label"), *zip(map(str, files), labels, strict=True)])
    return csv_path


def test_export_folder_names_are_valid_everywhere(shared_data: Path, tmp_path: Path, capsys) -> None:
    """MLR511's label "What?" is no folder name on Windows: exported as What_, and imported back as that."""
    csv_path = labelled_hands(shared_data, tmp_path / "src", ["What?", "Hi", ".hidden", "CON"])
    assert main(["import", "hands", str(csv_path), "--out", str(tmp_path / "lm")]) == 0
    capsys.readouterr()
    code, report = run_json(capsys, "export-mpdata", tmp_path / "lm", "--out", tmp_path / "MP_Data")
    assert (code, report["converted"]) == (0, 4)
    renamed = {"What?": "What_", ".hidden": "_hidden", "CON": "_CON"}
    assert report["renamed"] == renamed
    assert sorted(p.name for p in (tmp_path / "MP_Data").iterdir()) == sorted(["What_", "Hi", "_hidden", "_CON"])
    code, report = run_json(capsys, "import", "mpdata", tmp_path / "MP_Data", "--out", tmp_path / "again")
    assert (code, report["converted"]) == (0, 4)
    before = {renamed.get(s.label, s.label): landmarks.load(s.path) for s in read_labels(tmp_path / "lm/labels.csv")}
    after = {s.label: landmarks.load(s.path) for s in read_labels(tmp_path / "again/labels.csv")}
    assert sorted(after) == sorted(before)
    for label, array in after.items():
        np.testing.assert_array_equal(array, before[label])


@pytest.mark.parametrize("labels", [["What?", "What*"], ["hi", "Hi"]])
def test_export_refuses_labels_that_share_a_folder(shared_data: Path, tmp_path: Path, capsys, labels) -> None:
    csv_path = labelled_hands(shared_data, tmp_path / "src", labels)
    assert main(["import", "hands", str(csv_path), "--out", str(tmp_path / "lm")]) == 0
    capsys.readouterr()
    assert main(["export-mpdata", str(tmp_path / "lm"), "--out", str(tmp_path / "MP_Data")]) == 2
    err = capsys.readouterr().err
    assert f"labels {labels[0]!r} and {labels[1]!r} would share the folder" in err and "labels.csv" in err
    assert not (tmp_path / "MP_Data").exists()


def test_mpdata_sequence_with_a_frame_missing_is_refused(mp_data: Path, tmp_path: Path, capsys) -> None:
    """Left out, the frames after a missing one would move earlier in time: the sequence is named and not imported,
    the others are."""
    import shutil

    src = tmp_path / "MP_Data"
    shutil.copytree(mp_data / "hello", src / "hello")
    (src / "hello" / "3" / "17.npy").unlink()
    assert main(["import", "mpdata", str(src), "--out", str(tmp_path / "out")]) == 1
    out = capsys.readouterr().out
    assert f"{src / 'hello' / '3'}: frame(s) 17 missing between 0.npy and 29.npy" in out, out
