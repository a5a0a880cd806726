"""Named public sign-language datasets: where they come from, their licence, and verified fetching.

Each dataset is published in signrec's prepared layout (a folder with labels.csv, or the native index for
MP_Data and Kaggle ISLR, plus its files). The package ships one `datasets/<name>.sha256` file per dataset
in `sha256sum` format (`sha256sum -c` works on a fetched copy), so every file is verified wherever it
came from. `fetch` copies each missing or wrong file from a mirror: a folder holding `<name>/`, or an
http(s) URL of such a folder, given by $SIGNREC_DATA_MIRROR. Files are streamed to a `.part` file,
hashed on the way, and renamed into place only when the checksum matches, so an interrupted fetch
resumes and a complete copy is never re-downloaded.

The upstream repositories publish their own layouts (other folder names, original video encodings), not
this one; `source` names them for credit and licence, and `python -m signrec.landmarks.registry FOLDER` writes the
checksum files from a prepared copy.
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from signrec import SignrecError
from signrec.files import atomic_path, write_text

MIRROR_ENV = "SIGNREC_DATA_MIRROR"
MANIFEST_DIR = Path(__file__).with_name("datasets")
CHUNK = 1 << 20


class RegistryError(SignrecError):
    """An unknown dataset, an unreachable mirror, or a file that fails its checksum."""


@dataclass(frozen=True)
class Dataset:
    """One public dataset. `entry` is the path, inside the dataset folder, that the next command reads."""

    name: str
    description: str
    source: str
    licence: str
    citation: str
    kind: str  # "videos": extract first; "hands": `signrec import hands`; "mpdata"/"kaggle": `signrec import`
    entry: str = "labels.csv"


DATASETS: dict[str, Dataset] = {d.name: d for d in (
    Dataset(
        "mlr511_arsl",
        "MLR511 Arabic Sign Language (Intel RealSense D415): 10 signs x 8 signers x 10 repetitions, 800 videos "
        "(640x360, 15 fps); "
        "user01 and user02 are left-handed and mirrored. The set for signer-independent training.",
        "https://github.com/7abushahla/SignBartTF/tree/a82a0d3",
        "research use; terms as in the upstream repository",
        "MLR511 Arabic Sign Language recordings, as published in 7abushahla/SignBartTF (commit a82a0d3), "
        "https://github.com/7abushahla/SignBartTF",
        "videos",
    ),
    Dataset(
        "lsa64_hands",
        "LSA64 Argentinian Sign Language, 25 of 64 signs x 8 signers x 5 repetitions: 1000 hands-only "
        "MediaPipe landmark sequences (T, 2, 21, 3), centred between the shoulders and scaled by shoulder width.",
        "https://github.com/Tinhoangg/hand_gesture_regconition",
        "academic use (LSA64 terms)",
        "Ronchetti F., Quiroga F., Estrebou C., Lanzarini L., Rosete A. LSA64: An Argentinian Sign Language "
        "Dataset. XXII Congreso Argentino de Ciencias de la Computacion (CACIC), 2016.",
        "hands",
    ),
    Dataset(
        "croatian_colours",
        "Croatian Sign Language: 9 colour signs x 10 repetitions, one signer, 640x480, 30 fps, mirrored "
        "(selfie view). Labels are Croatian words with non-ASCII letters (žuta, smeđe, ljubičasta, ...).",
        "https://github.com/Dokicasilenovsky/CroatianSignLanguageDataSet",
        "research use; terms as in the upstream repository",
        "Croatian Sign Language data set, https://github.com/Dokicasilenovsky/CroatianSignLanguageDataSet",
        "videos",
    ),
    Dataset(
        "wlasl_clips",
        "40 WLASL American Sign Language clips, one gloss each, many signers, 192p to 1080p, some watermarked: "
        "for testing extraction and prediction on varied video, not for training.",
        "https://github.com/andreewaziz/WLASL-Sign-Language-Recognetion",
        "C-UDA (Computational Use of Data Agreement), research use",
        "Li D., Rodriguez C., Yu X., Li H. Word-level Deep Sign Language Recognition from Video: A New "
        "Large-scale Dataset and Methods Comparison. WACV 2020.",
        "videos",
    ),
    Dataset(
        "tutorial_mp_data",
        "The MediaPipe + LSTM tutorial layout MP_Data/<action>/<sequence>/<frame>.npy (1662 values a frame): "
        "hello, help, thank you x 10 sequences x 30 frames, one person.",
        "https://github.com/ArnavPundir22/ASL-translator",
        "research use; terms as in the upstream repository",
        "ASL-translator MP_Data, https://github.com/ArnavPundir22/ASL-translator",
        "mpdata",
        "MP_Data",
    ),
    Dataset(
        "kaggle_islr_schema",
        "48 one-frame fingerspelling sequences in the schema of Google's Isolated Sign Language Recognition "
        "Kaggle data (train.csv + long-format parquet), for testing the Kaggle importer.",
        "https://github.com/deusro/SILFA",
        "MIT",
        "SILFA, https://github.com/deusro/SILFA; schema of Google - Isolated Sign Language Recognition "
        "(Kaggle, 2023).",
        "kaggle",
        "train.csv",
    ),
)}


@dataclass(frozen=True)
class Manifest:
    """The checksum list of one dataset: (relative posix path, sha256) and the total size in bytes."""

    files: tuple[tuple[str, str], ...]
    total_bytes: int


def get(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise RegistryError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None


def manifest_file(name: str) -> Traversable:
    """The checksum list shipped for `name`, in sha256sum format: `sha256sum -c` checks a fetched copy with it."""
    get(name)
    return resources.files("signrec.landmarks") / "datasets" / f"{name}.sha256"


def manifest(name: str) -> Manifest:
    text = manifest_file(name).read_text(encoding="utf-8")
    files, total = [], 0
    for line in text.splitlines():
        if line.startswith("# bytes="):
            total = int(line.split("=", 1)[1])
        elif line and not line.startswith("#"):
            digest, rel = line.split("  ", 1)
            files.append((rel, digest))
    return Manifest(tuple(files), total)


def _walk(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*"), key=lambda p: p.relative_to(folder).as_posix()):
        rel = path.relative_to(folder)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts):
            yield path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(folder: str | os.PathLike, out: str | os.PathLike) -> Manifest:
    """Checksum every file under `folder` (hidden files skipped) into a sha256sum-format file `out`."""
    folder = Path(folder)
    files = tuple((p.relative_to(folder).as_posix(), sha256_of(p)) for p in _walk(folder))
    total = sum((folder / rel).stat().st_size for rel, _ in files)
    lines = [f"# {folder.name}: {len(files)} files", f"# bytes={total}"] + [f"{d}  {rel}" for rel, d in files]
    write_text(out, "\n".join(lines) + "\n")
    return Manifest(files, total)


# --- fetching -------------------------------------------------------------------------------------------

@dataclass
class FetchReport:
    name: str
    path: str
    files: int
    fetched: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)  # {"file", "error"} per file that failed

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "path": self.path, "files": self.files, "fetched": self.fetched,
                "failed": len(self.errors), "errors": self.errors}

    def text(self) -> str:
        lines = [f"{self.name}: {self.files - len(self.errors)}/{self.files} files verified in {self.path} "
                 f"({self.fetched} fetched, {len(self.errors)} failed)"]
        lines += [f"  FAILED {e['error']}" for e in self.errors]
        return "\n".join(lines)


def _mirror() -> str | None:
    return os.environ.get(MIRROR_ENV) or None


@contextmanager
def _open_source(mirror: str, name: str, rel: str) -> Iterator[BinaryIO]:
    """Open <mirror>/<name>/<rel> for reading, whether the mirror is a folder or an http(s)/file URL."""
    if "://" not in mirror:
        path = Path(mirror) / name / rel
        if not path.is_file():
            raise RegistryError(f"{rel}: missing from the mirror ({path})")
        with open(path, "rb") as fh:
            yield fh
        return
    url = f"{mirror.rstrip('/')}/{urllib.parse.quote(name)}/{urllib.parse.quote(rel)}"
    try:
        response = urllib.request.urlopen(url, timeout=60)
    except urllib.error.HTTPError as exc:
        raise RegistryError(f"{rel}: download failed, HTTP {exc.code} {exc.reason} ({url})") from None
    except (urllib.error.URLError, OSError) as exc:
        raise RegistryError(f"{rel}: can not reach {url} ({getattr(exc, 'reason', exc)})") from None
    with response:
        yield response


def _fetch_file(mirror: str, name: str, rel: str, digest: str, dest: Path, bar: tqdm) -> None:
    """Stream one file to dest's .part file, hashing it; rename into place only if the checksum matches."""
    with _open_source(mirror, name, rel) as src, atomic_path(dest) as tmp, open(tmp, "wb") as out:
        sha = hashlib.sha256()
        try:
            while chunk := src.read(CHUNK):
                sha.update(chunk)
                out.write(chunk)
                bar.update(len(chunk))
        except OSError as exc:
            raise RegistryError(f"{rel}: transfer interrupted ({exc})") from None
        if sha.hexdigest() != digest:
            raise RegistryError(f"{rel}: checksum mismatch (sha256 {sha.hexdigest()}, expected {digest}); "
                                f"the mirror's copy is damaged or a different version")


def fetch(name: str, to: str | os.PathLike, progress: bool = True) -> FetchReport:
    """Make `to/<name>` a verified copy of the dataset, fetching only the files missing or wrong there."""
    ds, man = get(name), manifest(name)
    target = Path(to) / ds.name
    report = FetchReport(ds.name, str(target), len(man.files))
    todo = [(rel, d) for rel, d in man.files if not ((target / rel).is_file() and sha256_of(target / rel) == d)]
    if not todo:
        return report
    mirror = _mirror()
    if mirror is None:
        state = (f"nothing has been fetched to {target} yet (no such folder)" if not target.exists()
                 else f"{len(todo)} of {len(man.files)} files are missing or damaged in {target}")
        raise RegistryError(
            f"{name}: {state}, and there is no mirror to fetch from. Set {MIRROR_ENV} to a folder (or http(s) "
            f"URL) holding {name}/ in signrec's prepared layout (there is no public host of it yet). The original "
            f"data, in its own layout: {ds.source} ({ds.licence})")
    size = man.total_bytes if len(todo) == len(man.files) else None  # else: a byte counter, no bar
    with tqdm(total=size, desc=f"fetch {name}", unit="B", unit_scale=True,
              disable=None if progress else True, file=sys.stderr) as bar:
        for rel, digest in todo:
            try:
                _fetch_file(mirror, name, rel, digest, target / rel, bar)
            except RegistryError as exc:
                report.errors.append({"file": str(target / rel), "error": str(exc)})
                continue
            report.fetched += 1
    return report


def dataset_path(name: str, root: str | os.PathLike) -> Path:
    """Fetch `name` into `root` if needed (verified) and return its entry: labels.csv, MP_Data or train.csv."""
    report = fetch(name, root)
    if report.errors:
        raise RegistryError(report.text())
    return Path(report.path) / get(name).entry


# --- command line -----------------------------------------------------------------------------------------


if __name__ == "__main__":  # maintainers: python -m signrec.landmarks.registry /path/to/prepared/datasets
    root = Path(sys.argv[1])
    for ds_name in DATASETS:
        m = write_manifest(root / ds_name, MANIFEST_DIR / f"{ds_name}.sha256")
        print(f"{ds_name}: {len(m.files)} files, {m.total_bytes} bytes")
