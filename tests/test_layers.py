"""The package's shape, enforced: layers import only downwards, no module imports itself back in a circle, and
the model layer loads without cv2, MediaPipe or Lightning.

Imports are read with `ast`, those inside functions too (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "signrec"

LAYERS = ("landmarks", "video", "model", "evaluate", "train", "recognize", "serve", "commands")
"""In pipeline order: a module may import from its own layer and the ones before it, never after."""
FOUNDATION = {"signrec", "signrec._moved", "signrec.files", "signrec.ranges"}
"""Below every layer: the error type, the names of the flat 0.1 modules, atomic writes, numeric ranges. They
import no layer."""
ENTRY = {"signrec.cli"}
"""Above every layer: the command line's dispatcher."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, known: set[str]) -> Iterator[tuple[int, str]]:
    """(line, module) for every signrec module `path` imports, at any depth of the code."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("signrec"):
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("signrec") \
                and node.level == 0:
            for alias in node.names:  # `from signrec.x import y` names module signrec.x.y when there is one
                sub = f"{node.module}.{alias.name}"
                yield node.lineno, sub if sub in known else node.module


def layer(module: str) -> int:
    """-1 for the foundation, len(LAYERS) for the entry point, else the index of the module's layer."""
    if module in FOUNDATION:
        return -1
    if module in ENTRY:
        return len(LAYERS)
    return LAYERS.index(module.split(".")[1])


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: {target for _line, target in imports(path, set(found)) if target != name}
            for name, path in found.items()}


def test_every_module_belongs_to_a_layer() -> None:
    stray = [m for m in modules() if m not in FOUNDATION | ENTRY and m.split(".")[1] not in LAYERS]
    assert not stray, f"modules outside the layers {LAYERS}: {stray}; put each in the layer of its stage"


def test_layers_import_only_downwards() -> None:
    found = modules()
    wrong = []
    for name, path in found.items():
        for line, target in imports(path, set(found)):
            if target in found and layer(target) > layer(name):
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {name} (layer {layer(name)}) imports "
                             f"{target} (layer {layer(target)})")
    assert not wrong, "imports from a later layer:\n" + "\n".join(wrong)


def test_no_import_circles() -> None:
    edges = graph()
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if nxt not in edges:
                continue
            if state.get(nxt) == 1:
                circles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    # a package's __init__ re-exporting its own modules is no circle: its modules never import the package
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)


@pytest.mark.parametrize("package, banned", [
    ("signrec.model", ("cv2", "mediapipe", "lightning")),
    ("signrec.landmarks", ("cv2", "mediapipe", "torch")),
])
def test_lower_layers_load_without_heavy_packages(package: str, banned: tuple[str, ...]) -> None:
    """An onnxruntime server or a remote worker imports what it uses and no more."""
    submodules = [m for m in modules() if m == package or m.startswith(package + ".")]
    code = ("import importlib, sys\n"
            f"for m in {submodules!r}: importlib.import_module(m)\n"
            f"print(sorted(b for b in {banned!r} if b in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"importing {package} loaded {out.strip()}"


@pytest.mark.parametrize("old, name", [
    ("signrec.extract", "extract_video"), ("signrec.extract", "ExtractSettings"), ("signrec.artifact", "Classifier"),
    ("signrec.artifact", "pad_batch"), ("signrec.export", "export_onnx"), ("signrec.dataset", "read_labels"),
    ("signrec.server", "create_app"), ("signrec.server", "ServerSettings"), ("signrec.continuous", "transcribe"),
    ("signrec.train", "TrainConfig"), ("signrec.train", "train_loso"), ("signrec.evaluate", "score"),
])
def test_the_flat_modules_of_0_1_still_import(old: str, name: str) -> None:
    """Scripts written against signrec 0.1's flat modules keep working, warned where things moved."""
    import importlib
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert callable(getattr(importlib.import_module(old), name))
