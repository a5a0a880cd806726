"""The browser runtime of the on-device page: MediaPipe Holistic (wasm) and ONNX Runtime Web, pinned.

Fetched once at set-up (`make setup` runs `python -m signrec.serve.web.vendor`) from the npm registry, never from a
CDN at run time: each tarball and each file taken from it must match the sha256 in `vendor.json`, so a changed
or truncated download is refused instead of being served to browsers. Only the files the page loads are kept
(the SIMD build and the full pose model, model_complexity=1 as in `signrec extract`).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

from signrec import SignrecError
from signrec.files import atomic_path

HERE = Path(__file__).parent
PINS = HERE / "vendor.json"
VENDOR_DIR = HERE / "vendor"
REGISTRY = os.environ.get("SIGNREC_NPM_REGISTRY", "https://registry.npmjs.org").rstrip("/")
"""A mirror of the npm registry may be named instead; the checksums are the same."""


class VendorError(SignrecError):
    """A runtime file that is missing, or a download that does not match its pin."""


def pins() -> dict[str, Any]:
    return json.loads(PINS.read_text(encoding="utf-8"))["packages"]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def files() -> dict[str, str]:
    """Every runtime file as {path under vendor/: sha256}."""
    return {f"{key}/{Path(member).name}": digest
            for key, pkg in pins().items() for member, digest in pkg["files"].items()}


def missing(root: Path = VENDOR_DIR) -> list[str]:
    """Runtime files absent from `root` or not matching their pin."""
    return [name for name, digest in files().items()
            if not (root / name).is_file() or file_sha256(root / name) != digest]


def check(root: Path = VENDOR_DIR) -> None:
    """Refuse to serve or export the page without its complete, checked runtime."""
    if bad := missing(root):
        raise VendorError(f"the on-device page's browser runtime is missing or altered in {root} ({', '.join(bad)}); "
                          "run `make setup` or `python -m signrec.serve.web.vendor` (needs the npm registry once)")


def tarball_url(pkg: dict[str, Any]) -> str:
    name, version = pkg["npm"], pkg["version"]
    return f"{REGISTRY}/{name}/-/{name.split('/')[-1]}-{version}.tgz"


def fetch(root: Path = VENDOR_DIR, log=print) -> list[str]:
    """Download and unpack the pinned packages whose files are missing or altered; returns what was written."""
    bad = set(missing(root))
    written = []
    for key, pkg in pins().items():
        wanted = {member: digest for member, digest in pkg["files"].items()
                  if f"{key}/{Path(member).name}" in bad}
        if not wanted:
            continue
        url = tarball_url(pkg)
        log(f"fetching {pkg['npm']}@{pkg['version']} from {url}")
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                data = response.read()
        except OSError as exc:
            raise VendorError(f"can not download {url}: {exc}") from None
        if sha256(data) != pkg["sha256"]:
            raise VendorError(f"{url}: sha256 {sha256(data)} is not the pinned {pkg['sha256']}; nothing written")
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member, digest in wanted.items():
                try:
                    content = tar.extractfile(f"package/{member}").read()  # type: ignore[union-attr]
                except (KeyError, AttributeError):
                    raise VendorError(f"{pkg['npm']}@{pkg['version']} has no file {member}") from None
                if sha256(content) != digest:
                    raise VendorError(f"{pkg['npm']}@{pkg['version']}/{member}: sha256 does not match its pin")
                target = root / key / Path(member).name
                with atomic_path(target) as tmp:
                    tmp.write_bytes(content)
                written.append(str(target.relative_to(root)))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m signrec.serve.web.vendor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check the files; exit 1 if any is missing")
    args = parser.parse_args(argv)
    try:
        if args.check:
            check()
        else:
            written = fetch()
            print(f"browser runtime in {VENDOR_DIR}: " + (f"{len(written)} files written" if written else "up to date"))
    except VendorError as exc:
        print(f"signrec.serve.web.vendor: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
