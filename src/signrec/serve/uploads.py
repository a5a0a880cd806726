"""An enrollment upload as a dataset folder: the recording page's zip, or landmark .npy / video files with a label
each. A zip is unpacked by hand, never with `extractall`: only labels.csv, manifest.json, .npy and video entries
under plain relative names, at most `max_bytes` decompressed in all (counted as they are written, whatever the
entry headers claim), and a labels.csv whose rows all name files of the zip, so an archive can neither write
outside the folder, nor fill the disk, nor have the server read its own files."""

from __future__ import annotations

import errno
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from signrec import SignrecError
from signrec.landmarks.dataset import VIDEO_EXTENSIONS, Sample, read_labels, write_labels

ZIP_MAGIC = b"PK\x03\x04"
MAX_ENTRIES = 2000
DATA_FILES = ("labels.csv", "manifest.json")
CHUNK = 1 << 20


class UploadError(SignrecError):
    """An upload that is no enrollment dataset, or one that breaks a limit: the entry and the problem named."""


def is_zip(head: bytes) -> bool:
    return head.startswith(ZIP_MAGIC)


def _entry_path(name: str) -> PurePosixPath:
    """A zip entry's name as a safe relative path, or UploadError (an absolute path, `..`, a drive letter)."""
    path = PurePosixPath(name)
    if (not name or "\\" in name or "\0" in name or path.is_absolute() or ".." in path.parts
            or re.match(r"^[A-Za-z]:", name)):
        raise UploadError(f"zip entry {name!r}: not a plain relative path; refused")
    return path


def _allowed(path: PurePosixPath) -> bool:
    suffix = path.suffix.lower()
    return path.name in DATA_FILES or suffix == ".npy" or suffix in VIDEO_EXTENSIONS


def unpack_zip(archive: BinaryIO, out: Path, max_bytes: int) -> Path:
    """The dataset in `archive` written under `out`; returns its labels.csv (at the top or in one folder)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            entries = [info for info in zf.infolist() if not info.is_dir()]
            if len(entries) > MAX_ENTRIES:
                raise UploadError(f"the zip has {len(entries)} files; at most {MAX_ENTRIES} are accepted")
            declared = sum(info.file_size for info in entries)
            if declared > max_bytes:
                raise UploadError(f"the zip unpacks to {declared / 2**20:.1f} MB; this server accepts at most "
                                  f"{max_bytes / 2**20:.3g} MB")
            seen: set[str] = set()
            written = 0
            for info in entries:
                path = _entry_path(info.filename)
                if not _allowed(path):
                    raise UploadError(f"zip entry {info.filename!r}: only labels.csv, manifest.json, landmark .npy "
                                      f"and video ({', '.join(VIDEO_EXTENSIONS)}) files are accepted")
                if path.as_posix().casefold() in seen:
                    raise UploadError(f"zip entry {info.filename!r} is in the zip twice")
                seen.add(path.as_posix().casefold())
                target = out.joinpath(*path.parts)
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as source, open(target, "wb") as sink:
                        while chunk := source.read(CHUNK):
                            written += len(chunk)
                            if written > max_bytes:
                                raise UploadError(f"the zip unpacks to more than {max_bytes / 2**20:.3g} MB, this "
                                                  "server's limit")
                            sink.write(chunk)
                except OSError as exc:
                    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                        raise
                    raise UploadError(f"zip entry {info.filename!r} can not be unpacked ({exc.strerror}): a file "
                                      "and a folder of the same name, or a name too long") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as exc:
        raise UploadError(f"the upload is not a readable zip ({exc})") from None
    tables = sorted(out.rglob("labels.csv"), key=lambda p: len(p.parts))
    if not tables:
        raise UploadError("the zip has no labels.csv (the recording page's zip has one at its top)")
    inside = out.resolve()
    for row, sample in enumerate(read_labels(tables[0]), start=2):
        if not sample.path.resolve().is_relative_to(inside):
            raise UploadError(f"labels.csv line {row} names a file outside the zip; every row must name a file in it")
    return tables[0]


def write_files(files: Sequence[tuple[str, BinaryIO]], labels: Sequence[str], signer: str, out: Path,
                max_bytes: int) -> Path:
    """Files uploaded one by one (name, content), `labels[i]` the sign of the i-th, as a dataset under `out`."""
    if len(labels) != len(files):
        raise UploadError(f"{len(files)} files but {len(labels)} labels: send one `labels` field per file")
    suffixes = {Path(name).suffix.lower() for name, _ in files}
    bad = sorted(s or "(none)" for s in suffixes if s != ".npy" and s not in VIDEO_EXTENSIONS)
    if bad:
        raise UploadError(f"files ending in {', '.join(bad)}: send landmark .npy files, videos "
                          f"({', '.join(VIDEO_EXTENSIONS)}) or one zip made by the recording page")
    if ".npy" in suffixes and len(suffixes) > 1:
        raise UploadError("send either landmark .npy files or videos, not both at once")
    rows, written = [], 0
    for i, ((name, content), label) in enumerate(zip(files, labels, strict=True)):
        if not label.strip():
            raise UploadError(f"{Path(name).name}: its label is empty")
        path = out / "clips" / f"{i:04d}{Path(name).suffix.lower()}"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as sink:
            while chunk := content.read(CHUNK):
                written += len(chunk)
                if written > max_bytes:
                    raise UploadError(f"the files are larger than {max_bytes / 2**20:.3g} MB, this server's limit")
                sink.write(chunk)
        rows.append(Sample(path, label.strip(), signer, {"source": Path(name).name}))
    write_labels(out / "labels.csv", rows)
    return out / "labels.csv"
