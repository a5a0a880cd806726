"""The on-device page with a model: a static folder any web server hosts (`signrec export --format web`), or the
same files served by `signrec serve` at `/app/`.

The folder holds the page (`page/`), the pinned browser runtime (`vendor/`), `model.onnx` (featurisation inside
the graph: raw landmarks in, probabilities out), `model.json` (what the page needs: labels, landmark settings,
stream settings, the model card), `manifest.json` (installable app) and `sw.js`, a service worker that keeps
the page and runtime for offline use; its version is a digest of every file, so a new export replaces the copy.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from signrec import SignrecError, __version__
from signrec.evaluate.card import card_text, expected_accuracy, model_card
from signrec.landmarks import layout as lm
from signrec.model.artifact import ONNX, Classifier
from signrec.recognize.continuous import StreamSettings
from signrec.serve.web import vendor

PAGE_DIR = Path(__file__).with_name("page")
SERVICE_WORKER = "sw.js"
MODEL_JSON = "model.json"
BROWSER_HAND_MODEL = "full"
"""The only hand landmark model the @mediapipe/holistic JS solution has."""


class WebExportError(SignrecError):
    """A model the page can not run, or a folder that can not be written."""


def check_model(classifier: Classifier) -> None:
    """Refuse a model whose training landmarks the browser's MediaPipe can not make."""
    hands = classifier.landmark_settings().hand_model
    if hands != BROWSER_HAND_MODEL:
        raise WebExportError(f"this model was trained on landmarks of the {hands} hand model; the browser's MediaPipe "
                             f"Holistic has the {BROWSER_HAND_MODEL} one only, so the page would feed it landmarks "
                             "unlike its training data. Train on landmarks extracted without --hand-model lite.")


def page_model(classifier: Classifier, onnx_sha256: str, name: str | None = None,
               base: Classifier | None = None) -> dict[str, Any]:
    """model.json for the page; `name`: the model's name on a server (None in a static export), `base`: the model
    a personal one was enrolled from (for the accuracy to expect)."""
    meta = classifier.describe()
    card = model_card(meta)
    base_card = None if base is None or base is classifier else model_card(base.describe())
    enrolled = meta.get("enrollment") or {}
    return {"labels": classifier.labels, "layout": lm.LAYOUT,
            "landmarks": {**meta["landmarks"], "face": classifier.landmark_settings().face},
            "model": classifier.model_name, "signrec": __version__, "name": name,
            "signer": enrolled.get("signer"), "card": card_text(card),
            "expected_accuracy": expected_accuracy(card, base_card),
            "stream": dataclasses.asdict(StreamSettings()), "onnx_sha256": onnx_sha256}


def static_files() -> dict[str, Path]:
    """Page and runtime files as {name in the folder: source}, the service worker excepted (it is generated)."""
    vendor.check()
    files = {p.name: p for p in sorted(PAGE_DIR.iterdir()) if p.is_file() and p.name != SERVICE_WORKER}
    return {**files, **{f"vendor/{name}": vendor.VENDOR_DIR / name for name in vendor.files()}}


def service_worker(files: dict[str, Path]) -> str:
    """sw.js: the names to keep offline and a version that changes with any of them, above the page's worker."""
    digest = hashlib.sha256()
    for name, path in sorted(files.items()):
        digest.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    names = ["./", *files]
    return (f"const VERSION = {json.dumps(digest.hexdigest()[:16])};\n"
            f"const FILES = {json.dumps(names)};\n" + (PAGE_DIR / SERVICE_WORKER).read_text(encoding="utf-8"))


def fresh_onnx(model_dir: Path, classifier: Classifier) -> Path | None:
    """MODEL/model.onnx if it was exported from the weights now in the folder, else None."""
    path = model_dir / ONNX
    if not path.is_file():
        return None
    if classifier.backend == "onnxruntime":  # loaded from this very file, after the same check
        return path
    from signrec.model.runtime import OnnxNetwork

    return path if OnnxNetwork(path).metadata.get("signrec.weights_sha256") == classifier.weights_digest() else None


def write_folder(model_dir: str | os.PathLike, out: str | os.PathLike, check: list[str] | None = None,
                 opset: int | None = None) -> dict[str, Any]:
    """Write the static app for the model in `model_dir` to `out`, whole or not at all.

    A `model.onnx` exported from the folder's current weights is reused; otherwise the model is exported (and
    checked against torch on real sequences: `check`, else its training data) into the new folder only.
    An existing `out` is replaced only if it is an earlier export (it has `sw.js` and `model.json`).
    """
    from signrec.model.export import DEFAULT_OPSET, check_sequences, export_onnx

    model_dir, out = Path(model_dir), Path(out)
    classifier = Classifier.load(model_dir)
    check_model(classifier)
    files = static_files()
    if out.exists() and any(out.iterdir()) and not ((out / SERVICE_WORKER).is_file() and (out / MODEL_JSON).is_file()):
        raise WebExportError(f"{out} exists and is not an earlier web export; choose an empty or new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))
    try:
        for name, source in files.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, tmp / name)
        onnx = fresh_onnx(model_dir, classifier)
        if onnx is not None:
            shutil.copyfile(onnx, tmp / ONNX)
        else:
            export_onnx(classifier, tmp / ONNX, check_sequences(classifier, check or []), opset or DEFAULT_OPSET)
        onnx_sha = vendor.file_sha256(tmp / ONNX)
        (tmp / MODEL_JSON).write_text(json.dumps(page_model(classifier, onnx_sha), ensure_ascii=False, indent=1),
                                      encoding="utf-8")
        (tmp / SERVICE_WORKER).write_text(service_worker({name: tmp / name for name in files}), encoding="utf-8")
        os.chmod(tmp, 0o755)
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {"path": str(out), "format": "web", "files": len(files) + 3, "bytes": size,
            "onnx": "reused " + str(model_dir / ONNX) if onnx is not None else "exported", "labels": classifier.labels}
