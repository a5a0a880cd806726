"""The flat modules of signrec 0.1 (`signrec.extract`, `signrec.artifact`, ...) still import, as views of the
layered package: scripts written against them keep working, with a DeprecationWarning naming the new home.

Only names are looked up here; nothing of the layers is imported until an old module is used.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import json
import sys
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

MOVED: dict[str, tuple[str, ...]] = {
    "signrec.dataset": ("signrec.landmarks.dataset",),
    "signrec.registry": ("signrec.landmarks.registry",),
    "signrec.formats": ("signrec.landmarks.formats",),
    "signrec.sources": ("signrec.video.sources",),
    "signrec.extract": ("signrec.video.settings", "signrec.video.holistic", "signrec.video.batch"),
    "signrec.show": ("signrec.video.show",),
    "signrec.features": ("signrec.model.features",),
    "signrec.models": ("signrec.model.networks",),
    "signrec.artifact": ("signrec.model.artifact", "signrec.model.runtime"),
    "signrec.export": ("signrec.model.export", "signrec.model.runtime"),
    "signrec.augment": ("signrec.train.augment",),
    "signrec.predict": ("signrec.recognize.predict",),
    "signrec.continuous": ("signrec.recognize.continuous",),
    "signrec.live": ("signrec.recognize.live",),
    "signrec.server": ("signrec.serve.app", "signrec.serve.settings", "signrec.serve.schemas"),
    "signrec.demo": ("signrec.commands.demo",),
}
"""Old module -> the modules its names now live in, searched in order."""


def _new(module: str, name: str) -> Any:
    """A name of the layered package, looked up when called (this module imports no layer itself)."""
    return getattr(importlib.import_module(module), name)


def _ensure_landmarks(data: Any, cache_dir: Any = None, workers: int | None = None, settings: Any = None,
                      progress: bool = True) -> Any:
    settings = settings or _new("signrec.video.settings", "ExtractSettings")()
    return _new("signrec.video.batch", "open_dataset")(data, settings, workers, cache_dir, progress).labels_csv


def _landmark_models(labels_csv: Any) -> dict[str, Any]:
    path = Path(labels_csv).parent / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return _new("signrec.landmarks.store", "landmark_models_of")(manifest)


RENAMED: dict[tuple[str, str], tuple[str, Callable[..., Any]]] = {
    ("signrec.extract", "ensure_landmarks"): ("signrec.video.batch.open_dataset(...).labels_csv", _ensure_landmarks),
    ("signrec.extract", "landmark_models"): ("signrec.landmarks.store.landmark_models_of(manifest)", _landmark_models),
}
"""Functions whose job a new API does: (old module, name) -> (what to use now, an equivalent)."""


class _OldModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # the import system's own questions (__file__, __path__, ...)
            raise AttributeError(name)
        if (self.__name__, name) in RENAMED:
            new, function = RENAMED[self.__name__, name]
            warnings.warn(f"{self.__name__}.{name} is now {new}", DeprecationWarning, stacklevel=2)
            return function
        for home in MOVED[self.__name__]:
            module = importlib.import_module(home)
            if hasattr(module, name):
                warnings.warn(f"{self.__name__}.{name} moved to {home}.{name}", DeprecationWarning, stacklevel=2)
                return getattr(module, name)
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r} (see docs/architecture.md for "
                             "where signrec's modules live now)")


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        return importlib.machinery.ModuleSpec(fullname, self) if fullname in MOVED else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _OldModule(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: names are looked up when used."""


def install() -> None:
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.append(_Finder())


def lazy_exports(package: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A package's module `__getattr__` that serves `names` (name -> module) when first used: the names a flat
    module of signrec 0.1 had (`from signrec.train import train`), without importing the package's modules
    up front."""

    def __getattr__(name: str) -> Any:
        if name in names:
            return _new(names[name], name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
