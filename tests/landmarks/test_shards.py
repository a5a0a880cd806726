"""The shard store: pack, read back (local folder and fsspec URLs), faults, and training that streams it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from learning_data import lsa64_subset
from signrec import landmarks
from signrec.cli import main
from signrec.landmarks.dataset import read_labels
from signrec.landmarks.shards import ShardStore, StoreError, pack


@pytest.fixture(scope="module")
def lsa64(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 real LSA64 signs x 8 signers x 5 repetitions = 200 sequences as a landmark folder."""
    return lsa64_subset(shared_data, tmp_path_factory.mktemp("lsa64"))


def test_a_packed_store_presents_the_folder_samples_bit_for_bit(lsa64, tmp_path, capsys):
    assert main(["pack", str(lsa64.parent), "--out", str(tmp_path / "s"), "--shard-mb", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["packed"] == 200 and report["shards"] > 1 and not report["failed"]
    store = ShardStore(tmp_path / "s")
    folder = read_labels(lsa64)
    base = lsa64.parent
    assert [(s.key, s.label, s.signer) for s in store.samples] == \
        [(s.path.relative_to(base).as_posix(), s.label, s.signer) for s in folder]
    assert store.labels() == sorted({s.label for s in folder}) and len(store.signers()) == 8
    arrays = {s.path.relative_to(base).as_posix(): landmarks.load(s.path) for s in folder}
    streamed = dict((s.key, a) for s, a in store.stream())
    assert streamed.keys() == arrays.keys()
    for key, array in arrays.items():
        assert streamed[key].tobytes() == array.tobytes() and store.frames(store.samples[0]) > 0
    assert store.load(store.samples[7]).tobytes() == arrays[store.samples[7].key].tobytes()


def test_shuffled_partitioned_streams_cover_every_sample_once_with_a_bounded_buffer(lsa64, tmp_path):
    pack(lsa64, tmp_path / "s", shard_mb=1, progress=False)
    store = ShardStore(tmp_path / "s")
    keys = [s.key for s in store.samples]
    parts = [[s.key for s, _ in store.stream(seed=3, buffer=16, part=(i, 3))] for i in range(3)]
    assert sorted(k for p in parts for k in p) == sorted(keys)
    one = [s.key for s, _ in store.stream(seed=3, buffer=16)]
    assert one == [s.key for s, _ in store.stream(seed=3, buffer=16)] != [s.key for s, _ in store.stream(seed=4)]
    wanted = set(keys[::5])
    assert {s.key for s, _ in store.stream(wanted, seed=1)} == wanted


def test_float16_halves_the_store_and_keeps_nan(lsa64, tmp_path):
    full = pack(lsa64, tmp_path / "f32", progress=False)
    half = pack(lsa64, tmp_path / "f16", dtype="float16", progress=False)
    assert half.bytes < 0.6 * full.bytes
    a = dict((s.key, x) for s, x in ShardStore(tmp_path / "f32").stream())
    b = dict((s.key, x) for s, x in ShardStore(tmp_path / "f16").stream())
    for key in a:
        assert b[key].dtype == np.float32
        np.testing.assert_array_equal(np.isnan(a[key]), np.isnan(b[key]))
        np.testing.assert_allclose(b[key], a[key], rtol=1e-3, atol=1e-4, equal_nan=True)


def test_any_fsspec_url(lsa64, tmp_path):
    for url in ("memory://signrec-test/store", f"file://{tmp_path}/store"):
        pack(lsa64, url, shard_mb=1, progress=False)
        store = ShardStore(url)
        assert len(store.samples) == 200 and sum(1 for _ in store.stream()) == 200


def test_a_corrupt_shard_is_named_and_the_rest_read(lsa64, tmp_path):
    pack(lsa64, tmp_path / "s", shard_mb=1, progress=False)
    shards = sorted((tmp_path / "s").glob("shard-*.parquet"))
    assert len(shards) >= 3
    data = bytearray(shards[1].read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(64)
    shards[1].write_bytes(bytes(data))
    store = ShardStore(tmp_path / "s")
    with pytest.warns(UserWarning, match=shards[1].name):
        got = sum(1 for _ in store.stream())
    assert 0 < got < 200 and store.errors and all(shards[1].name in e for e in store.errors)
    assert got >= 200 - json.loads((tmp_path / "s" / "store.json").read_text())["shards"][1]["sequences"]


def test_another_layout_or_an_unfinished_pack_is_refused(lsa64, tmp_path):
    pack(lsa64, tmp_path / "s", progress=False)
    meta_path = tmp_path / "s" / "store.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "layout": "hands-42-xyz"}))
    with pytest.raises(StoreError, match="layout 'hands-42-xyz'.*holistic-543-xyz"):
        ShardStore(tmp_path / "s")
    meta_path.unlink()
    with pytest.raises(StoreError, match="not a shard store.*unfinished pack"):
        ShardStore(tmp_path / "s")
    (tmp_path / "s" / ".shard-00001.parquet.part").write_bytes(b"cut off")
    assert pack(lsa64, tmp_path / "s", progress=False).packed == 200  # an unfinished pack is packed again
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["index.parquet", "shard-00000.parquet",
                                                                  "store.json"]
    for other in ("store.json", "notes.txt"):  # a finished store, or anything not a pack's, is left alone
        (tmp_path / other).mkdir()
        (tmp_path / other / other).write_text("keep")
        with pytest.raises(StoreError, match="not empty"):
            pack(lsa64, tmp_path / other, progress=False)



def test_kaggle_import_streams_into_shards(shared_data, tmp_path, capsys):
    from signrec.landmarks.formats import import_dataset

    src = shared_data / "kaggle_islr_schema"
    folder = import_dataset("kaggle", src, tmp_path / "folder", progress=False)
    report = import_dataset("kaggle", src, str(tmp_path / "store"), progress=False, shards="float32")
    assert report.converted == folder.converted == 48 and not report.failed
    store = ShardStore(tmp_path / "store")
    rows = {Path(s.path).relative_to(tmp_path / "folder").as_posix(): s for s in read_labels(tmp_path / "folder" /
                                                                                            "labels.csv")}
    assert [(s.key, s.label, s.signer) for s in store.samples] == [(k, s.label, s.signer) for k, s in rows.items()]
    for sample, array in store.stream():
        assert array.tobytes() == landmarks.load(rows[sample.key].path).tobytes()
    # --shard-mb bounds a shard (and the memory an import holds); a sequence listed twice is reported, not packed twice
    index = (tmp_path / "train.csv")
    lines = (src / "train.csv").read_text().splitlines()
    index.write_text("\n".join([lines[0], *(line.replace("train_landmark_files/", f"{src}/train_landmark_files/")
                                             for line in [*lines[1:], lines[1]])]) + "\n")
    assert main(["import", "kaggle", str(index), "--out", str(tmp_path / "small"), "--shards", "--shard-mb", "0.05",
                 "--json"]) == 1
    small = json.loads(capsys.readouterr().out)
    assert small["converted"] == 48 and small["failed"] == 1 and "a second sequence" in small["errors"][0]["error"]
    assert [s["sequences"] for s in ShardStore(tmp_path / "small").meta["shards"]] == [9, 9, 9, 9, 9, 3]  # 6.4 kB each
