"""A landmark dataset as shards: a few large Parquet files, read as a stream from a folder or any fsspec URL.

    signrec pack DATA --out SHARDS [--dtype float16] [--shard-mb 256]

    SHARDS/store.json             format version, landmark layout, dtype, landmark models, the shards
    SHARDS/index.parquet          one row a sequence: key, label, signer, frames, where it is, other labels.csv columns
    SHARDS/shard-00000.parquet    key, frames, landmarks: the (frames, 543, 3) array's raw little-endian bytes

Parquet, because it measured best for this data (BENCHMARKS.md, "Shard format"): pyarrow and fsspec are already
in the stack, row groups give bounded reads, and page checksums name a damaged shard while the rest stays readable.
Sequences are packed in a seeded random order, so that a row group mixes signers and signs and a small shuffle
buffer suffices; `samples` still come in the dataset's own order. Every file is written to a temporary name and
moved into place, store.json last: a store without it is an unfinished pack, refused until packed again (a pack
into it replaces what the unfinished one wrote).
"""

from __future__ import annotations

import json
import os
import random
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from signrec import SignrecError, __version__, landmarks
from signrec.landmarks.dataset import Sample, labels_of, read_labels, signers_of
from signrec.landmarks.store import FolderStore

FORMAT = "signrec-shards"
VERSION = 1
STORE = "store.json"
INDEX = "index.parquet"
DTYPES = ("float32", "float16")
ROWS_PER_GROUP = 64
"""Sequences a row group: the unit of reading (~10 MB of MLR511 at float32)."""
INDEX_COLUMNS = ("key", "label", "signer", "frames", "position", "shard", "row_group", "row")


_UNFINISHED = re.compile(r"\.?(shard-\d{5}\.parquet|index\.parquet)(\.part)?")
"""The files a pack writes before store.json: all that an unfinished pack leaves."""


class StoreError(SignrecError):
    """A shard store that can not be used, with the store or the shard named."""


def _fs(url: str | os.PathLike) -> tuple[Any, str]:
    import fsspec

    return fsspec.core.url_to_fs(str(url))


def is_store(url: str | os.PathLike) -> bool:
    """Whether `url` is a shard store (has a store.json), so that commands can take either kind of dataset."""
    try:
        fs, root = _fs(url)
        return fs.isfile(f"{root.rstrip('/')}/{STORE}")
    except (OSError, ValueError, ImportError):
        return False


def _write_atomic(fs: Any, path: str, data: bytes) -> None:
    """Write under a temporary name, then move: a killed pack leaves no file under a final name."""
    head, _, name = path.rpartition("/")
    tmp = f"{head}/.{name}.part"
    with fs.open(tmp, "wb") as fh:
        fh.write(data)
    fs.mv(tmp, path)


def _parquet_bytes(table: Any, row_group_size: int) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=row_group_size, compression="zstd", write_page_checksum=True)
    return sink.getvalue().to_pybytes()


@dataclass
class _Pending:
    keys: list[str] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)
    blobs: list[bytes] = field(default_factory=list)
    size: int = 0


class ShardWriter:
    """Sequences in, shards out. `close()` writes the index and store.json; without it the store is unfinished."""

    def __init__(self, url: str | os.PathLike, dtype: str = "float32", shard_mb: float = 256,
                 landmark_models: dict[str, Any] | None = None):
        if dtype not in DTYPES:
            raise StoreError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        self.url, self.dtype = str(url), dtype
        self.fs, self.root = _fs(url)
        self.root = self.root.rstrip("/")
        self._clear_unfinished()
        self.fs.makedirs(self.root, exist_ok=True)
        self.shard_bytes = int(shard_mb * 2**20)
        self.landmark_models = dict(landmark_models or {})
        self.index: list[dict[str, Any]] = []
        self.shards: list[dict[str, Any]] = []
        self.failed: list[str] = []
        """Sequences of the source that could not be read, each reason naming it: kept in store.json."""
        self._pending = _Pending()
        self._keys: set[str] = set()

    def _clear_unfinished(self) -> None:
        """An unfinished pack (its files only, no store.json) is written again; anything else is left alone."""
        if not self.fs.exists(self.root):
            return
        paths = self.fs.ls(self.root, detail=False)
        if any(not _UNFINISHED.fullmatch(path.rstrip("/").rsplit("/", 1)[-1]) for path in paths):
            raise StoreError(f"{self.url}: exists and is not empty; choose another --out")
        for path in paths:
            self.fs.rm(path)

    def add(self, sample: Sample, key: str, array: np.ndarray, position: int) -> None:
        """One sequence; `key` names it in the store (its path relative to the dataset), `position` its row there."""
        if key in self._keys:
            raise StoreError(f"{key}: a second sequence under this key; each must have its own")
        array = landmarks.validate(array, key)
        self._keys.add(key)
        blob = array.astype(np.dtype(self.dtype).newbyteorder("<"), copy=False).tobytes()
        row = len(self._pending.keys)
        self.index.append({"key": key, "label": sample.label, "signer": sample.signer, "frames": len(array),
                           "position": position, "shard": len(self.shards), "row_group": row // ROWS_PER_GROUP,
                           "row": row % ROWS_PER_GROUP, **{f"extra.{k}": v for k, v in sample.extra.items()}})
        self._pending.keys.append(key)
        self._pending.frames.append(len(array))
        self._pending.blobs.append(blob)
        self._pending.size += len(blob)
        if self._pending.size >= self.shard_bytes:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if not self._pending.keys:
            return
        name = f"shard-{len(self.shards):05d}.parquet"
        table = pa.table({"key": self._pending.keys, "frames": pa.array(self._pending.frames, pa.int32()),
                          "landmarks": pa.array(self._pending.blobs, pa.large_binary())})
        _write_atomic(self.fs, f"{self.root}/{name}", _parquet_bytes(table, ROWS_PER_GROUP))
        self.shards.append({"name": name, "sequences": len(self._pending.keys),
                            "frames": sum(self._pending.frames)})
        self._pending = _Pending()

    def close(self) -> None:
        import pyarrow as pa

        self._flush()
        extras = sorted({k for row in self.index for k in row if k.startswith("extra.")})
        columns = {name: [row.get(name) for row in self.index] for name in (*INDEX_COLUMNS, *extras)}
        _write_atomic(self.fs, f"{self.root}/{INDEX}", _parquet_bytes(pa.table(columns), 1 << 20))
        store = {"format": FORMAT, "version": VERSION, "layout": landmarks.LAYOUT, "dtype": self.dtype,
                 "landmark_models": self.landmark_models, "sequences": len(self.index), "shards": self.shards,
                 "failed": self.failed, "signrec": __version__}
        _write_atomic(self.fs, f"{self.root}/{STORE}", (json.dumps(store, indent=2) + "\n").encode())


class ShardStore:
    """An opened shard store: a LandmarkStore (samples, labels, signers, landmark models, load one sample, its
    source) plus `stream`, which reads row groups in order and is what training uses."""

    def __init__(self, url: str | os.PathLike):
        import pyarrow.parquet as pq

        self.url = str(url)
        self.fs, root = _fs(url)
        self.root = root.rstrip("/")
        try:
            with self.fs.open(f"{self.root}/{STORE}", "rb") as fh:
                meta = json.loads(fh.read())
        except FileNotFoundError:
            raise StoreError(f"{self.url}: not a shard store (no {STORE}; an unfinished pack? pack it again)"
                             ) from None
        except (OSError, ValueError) as exc:
            raise StoreError(f"{self.url}/{STORE}: unreadable ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise StoreError(f"{self.url}: {STORE} is not a signrec shard store")
        if meta.get("version") != VERSION:
            raise StoreError(f"{self.url}: shard store version {meta.get('version')}; this signrec reads {VERSION}")
        if meta.get("layout") != landmarks.LAYOUT:
            raise StoreError(f"{self.url}: holds landmarks of layout {meta.get('layout')!r}, signrec uses "
                             f"{landmarks.LAYOUT!r}; convert the data (`signrec import`) and pack it again")
        if meta.get("dtype") not in DTYPES:
            raise StoreError(f"{self.url}: unknown dtype {meta.get('dtype')!r}")
        self.meta = meta
        self.dtype = np.dtype(meta["dtype"]).newbyteorder("<")
        self.landmark_models: dict[str, Any] = dict(meta.get("landmark_models") or {})
        try:
            with self.fs.open(f"{self.root}/{INDEX}", "rb") as fh:
                index = pq.read_table(fh).to_pylist()
        except (OSError, ValueError) as exc:
            raise StoreError(f"{self.url}/{INDEX}: unreadable ({exc})") from None
        index.sort(key=lambda row: row["position"])
        self._where = {row["key"]: row for row in index}
        self.failed: list[str] = []  # a packed store holds only what was packed; pack reported the rest
        self.notes: list[str] = []
        self.samples = [Sample(Path(row["key"]), row["label"], row["signer"],
                               {k.removeprefix("extra."): v for k, v in row.items()
                                if k.startswith("extra.") and v is not None}) for row in index]
        self.errors: list[str] = []
        """Shards or row groups that could not be read, each named with the reason; the rest was read."""
        self.failed: list[str] = [str(reason) for reason in meta.get("failed") or []]
        """What the pack could not read from the source dataset (the LandmarkStore contract)."""
        self.notes: list[str] = []
        self._cached: tuple[tuple[int, int], dict[str, np.ndarray]] | None = None

    @property
    def name(self) -> str:
        return self.url

    def labels(self) -> list[str]:
        return labels_of(self.samples)

    def signers(self) -> list[str]:
        return signers_of(self.samples)

    def frames(self, sample: Sample) -> int:
        return int(self._where[sample.key]["frames"])

    def source(self, sample: Sample) -> str:
        return f"{self.url}#{sample.key}"

    def load(self, sample: Sample) -> np.ndarray:
        """One sample (reads its row group, kept until another is needed: fine in store order, slow at random)."""
        row = self._where.get(sample.key)
        if row is None:
            raise landmarks.LandmarkError(f"{self.source(sample)}: not in this store")
        where = (row["shard"], row["row_group"])
        if self._cached is None or self._cached[0] != where:
            arrays = self._read_group(*where)
            if arrays is None:
                raise landmarks.LandmarkError(f"{self.source(sample)}: {self.errors[-1]}")
            self._cached = (where, arrays)
        return self._cached[1][sample.key]

    def _shard_url(self, shard: int) -> str:
        return f"{self.root}/{self.meta['shards'][shard]['name']}"

    def _read_group(self, shard: int, group: int) -> dict[str, np.ndarray] | None:
        """key -> float32 landmarks of one row group; None (and the reason in `errors`) if it can not be read."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = self._shard_url(shard)
        try:
            with self.fs.open(path, "rb") as fh:
                table = pq.ParquetFile(fh, page_checksum_verification=True).read_row_group(group)
            keys = table.column("key").to_pylist()
            frames = table.column("frames").to_numpy()
            blobs = table.column("landmarks").combine_chunks()
            offsets = np.frombuffer(blobs.buffers()[1], dtype=np.int64)[blobs.offset: blobs.offset + len(blobs) + 1]
            data = np.frombuffer(blobs.buffers()[2], dtype=np.uint8)
            out = {}
            for key, n, start, stop in zip(keys, frames, offsets[:-1], offsets[1:], strict=True):
                values = data[start:stop].view(self.dtype)
                if values.size != n * landmarks.N_LANDMARKS * landmarks.N_CHANNELS:
                    raise ValueError(f"sequence {key!r} holds {values.size} values, not {n} frames' worth")
                out[key] = values.reshape(n, landmarks.N_LANDMARKS, landmarks.N_CHANNELS).astype(np.float32)
            return out
        except (OSError, ValueError, IndexError, pa.ArrowException) as exc:
            reason = f"{self.url}/{path.rsplit('/', 1)[-1]}: row group {group} unreadable ({exc})"
            self.errors.append(reason)
            warnings.warn(reason, stacklevel=3)
            return None

    def groups(self) -> list[tuple[int, int]]:
        """Every (shard, row group) holding sequences, in store order."""
        return [(shard, group) for shard, info in enumerate(self.meta["shards"])
                for group in range(-(-info["sequences"] // ROWS_PER_GROUP))]

    def stream(self, keys: Iterable[str] | None = None, seed: int | None = None, buffer: int = 512,
               part: tuple[int, int] = (0, 1)) -> Iterator[tuple[Sample, np.ndarray]]:
        """(sample, landmarks) for `keys` (default all), reading one row group at a time.

        With a `seed`, row groups come in a seeded random order and pass through a shuffle buffer of `buffer`
        sequences: memory is bounded by the buffer, not by the store. `part` (i, n) reads every n-th row group
        from the i-th, so that n readers (DataLoader workers, DDP ranks) share the store without overlap.
        An unreadable row group is named in `errors` (and a warning), and the stream goes on."""
        wanted = None if keys is None else set(keys)
        by_key = {s.key: s for s in self.samples}
        groups = self.groups()[part[0]::part[1]]
        rng = random.Random(seed)
        if seed is not None:
            rng.shuffle(groups)
        held: list[tuple[Sample, np.ndarray]] = []
        for shard, group in groups:
            arrays = self._read_group(shard, group)
            for key, array in (arrays or {}).items():
                if wanted is not None and key not in wanted:
                    continue
                item = (by_key[key], array)
                if seed is None:
                    yield item
                    continue
                held.append(item)
                if len(held) >= buffer:
                    i = rng.randrange(len(held))
                    held[i], held[-1] = held[-1], held[i]
                    yield held.pop()
        rng.shuffle(held)
        yield from held


# --- pack ---------------------------------------------------------------------------------------------------

@dataclass
class PackReport:
    out: str
    packed: int = 0
    frames: int = 0
    failed: list[str] = field(default_factory=list)
    shards: int = 0
    bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"out": self.out, "packed": self.packed, "frames": self.frames, "failed": self.failed,
                "shards": self.shards, "bytes": self.bytes}


def pack(data: str | os.PathLike, out: str | os.PathLike, dtype: str = "float32", shard_mb: float = 256,
         seed: int = 0, progress: bool = True) -> PackReport:
    """Write the landmark dataset `data` (labels.csv or its folder) as a shard store at `out`."""
    from tqdm import tqdm

    data = Path(data)
    csv_path = data / "labels.csv" if data.is_dir() else data
    samples = read_labels(csv_path)
    base = csv_path.parent.resolve()
    writer = ShardWriter(out, dtype, shard_mb, FolderStore.open(csv_path).landmark_models)
    report = PackReport(str(out))
    order = list(range(len(samples)))
    random.Random(seed).shuffle(order)
    for position in tqdm(order, unit="seq", desc="pack", disable=True if not progress else None):
        sample = samples[position]
        try:
            array = landmarks.load(sample.path)
        except landmarks.LandmarkError as exc:
            report.failed.append(str(exc))
            writer.failed.append(str(exc))
            continue
        key = Path(os.path.relpath(sample.path, base)).as_posix()
        writer.add(sample, key, array, position)
        report.packed += 1
        report.frames += len(array)
    if not report.packed:
        raise StoreError(f"{csv_path}: no landmark file could be read")
    writer.close()
    report.shards = len(writer.shards)
    report.bytes = sum(writer.fs.size(f"{writer.root}/{s['name']}") for s in writer.shards)
    return report
