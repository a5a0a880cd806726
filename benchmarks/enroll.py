"""Enrollment measured as a user meets it: a base model that never saw this person, k clips per sign of theirs.

    python benchmarks/enroll.py personal BASES --data DIR [--draws 5] [--jobs 2]   # mlr511, lsa64: k = 1, 3, 5
    python benchmarks/enroll.py newsigns BASES --croatian LABELS.csv --mpdata LABELS.csv

BASES holds base models from benchmarks/enroll_bases.py (weights.npz + meta.json each), DIR its packed data.
`personal`: for every leave-one-signer-out base model, the test signer's clips; for each k, `draws` random choices
of k repetitions per sign to enroll, the signer's other clips to test. Every candidate is scored on the same
draws, and also on the fold's validation signer (whom the base model did not train on either): the default is
chosen on the validation signers, the tables report test signers.
`newsigns`: signs in no base model (croatian_colours, tutorial MP_Data), enrolled with k = 1, 3 against a network
trained from scratch on the same clips and a nearest neighbour on the features.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from enroll_bases import load_packed  # noqa: E402
from signrec.model import networks as models  # noqa: E402
from signrec.model.features import FeatureSpec  # noqa: E402
from signrec.train.enroll import EnrollSettings, adapt, views  # noqa: E402

KS = (1, 3, 5)
DEFAULT = EnrollSettings()
CANDIDATES: dict[str, EnrollSettings] = {
    "prototypes only": replace(DEFAULT, steps=0, scale=1000.0),
    "base + prototypes s=10": replace(DEFAULT, steps=0, scale=10.0),
    "base + prototypes s=20": replace(DEFAULT, steps=0, scale=20.0),
    "head a=0.01": replace(DEFAULT, anchor=0.01, scale=0.0),
    "head a=0.1": replace(DEFAULT, anchor=0.1, scale=0.0),
    "head a=1": replace(DEFAULT, anchor=1.0, scale=0.0),
    "head a=0.1 + prototypes s=10": replace(DEFAULT, anchor=0.1, scale=10.0),
    "head a=1 + prototypes s=10": replace(DEFAULT, anchor=1.0, scale=10.0),
    "head a=0.001": replace(DEFAULT, anchor=0.001, scale=0.0),
    "head a=0": replace(DEFAULT, anchor=0.0, scale=0.0),
    "head a=0.01, 300 steps": replace(DEFAULT, anchor=0.01, scale=0.0, steps=300),
}
"""Candidates besides zero-shot; "prototypes only" lets the cosine outweigh the base logits entirely. The last
three were added after the first run, whose best candidate was the weakest pull tried."""


def load_base(folder: Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    spec = FeatureSpec.from_dict(meta["feature_spec"])
    model = models.build_model(meta["model"], spec.n_features, len(meta["labels"]), **meta["hparams"])
    model.load_state_dict({k: torch.from_numpy(v) for k, v in np.load(folder / "weights.npz").items()})
    return model.eval(), meta


def embed(model: torch.nn.Module, spec: FeatureSpec, arrays: list[np.ndarray]) -> torch.Tensor:
    """The base network's embedding (N, D) of landmark arrays, as `Classifier.embed` gives it."""
    from signrec.model.artifact import Classifier

    return torch.from_numpy(Classifier(["?"], spec, "lstm", {}, model=model).embed(arrays))


def to_folder(base: Path, out: Path) -> Path:
    """A base model of enroll_bases.py as an ordinary model folder (what `signrec train` would have saved)."""
    from signrec.model.artifact import Classifier

    model, meta = load_base(base)
    Classifier(meta["labels"], FeatureSpec.from_dict(meta["feature_spec"]), meta["model"], meta["hparams"],
               model=model, meta={"training": {"config": meta["config"], "base": meta["name"]}}).save(out)
    return out


def draws(labels: list[str], k: int, n: int, seed: int) -> list[np.ndarray]:
    """n random enrollment sets: k clips of every sign (a mask over the clips); signs with <= k clips skipped."""
    out = []
    rng = np.random.default_rng(seed)
    arr = np.array(labels)
    for _ in range(n):
        chosen = np.zeros(len(labels), dtype=bool)
        for label in sorted(set(labels)):
            idx = np.flatnonzero(arr == label)
            if len(idx) > k:
                chosen[rng.choice(idx, k, replace=False)] = True
        out.append(chosen)
    return out


def personal_fold(folder: Path, data_dir: Path, n_draws: int, n_views: int,
                  candidates: list[str] | None = None) -> list[dict[str, Any]]:
    """Every candidate on every draw of one base model's test and validation signers."""
    torch.set_num_threads(1)
    model, meta = load_base(folder)
    spec = FeatureSpec.from_dict(meta["feature_spec"])
    samples, arrays = load_packed(data_dir / f"{meta['data']}.npz")
    index = {label: i for i, label in enumerate(meta["labels"])}
    rows: list[dict[str, Any]] = []
    for role in ("test", "val"):
        mine = [i for i, s in enumerate(samples) if s.signer == meta[role] and s.label in index]
        y = torch.tensor([index[samples[i].label] for i in mine])
        seen, source = views([arrays[i] for i in mine], n_views, seed=meta["seed"])
        z_all = embed(model, spec, seen)
        clean = z_all[np.flatnonzero(np.r_[True, source[1:] != source[:-1]])]
        for k in KS:
            for d, chosen in enumerate(draws([samples[i].label for i in mine], k, n_draws, seed=1000 * k + meta["seed"])):
                test = torch.from_numpy(~chosen)
                if not test.any() or not chosen.any():
                    continue
                enrol = torch.from_numpy(chosen[source])
                z, yz = z_all[enrol], y[source][enrol]
                row = {"data": meta["data"], "seed": meta["seed"], "signer": meta[role], "role": role, "k": k,
                       "draw": d, "n_test": int(test.sum())}
                with torch.no_grad():
                    row["zero-shot"] = float((model.head(clean[test]).argmax(1) == y[test]).float().mean())
                for name, settings in CANDIDATES.items():
                    if candidates and name not in candidates:
                        continue
                    personal = adapt(model, z, yz, list(range(len(index))), replace(settings, seed=d))
                    with torch.no_grad():
                        row[name] = float((personal.head(clean[test]).argmax(1) == y[test]).float().mean())
                rows.append(row)
    return rows


def run_personal(bases: Path, data_dir: Path, n_draws: int, n_views: int, jobs: int, pattern: str = "enroll-*",
                 candidates: list[str] | None = None) -> list[dict[str, Any]]:
    """The rows of every fold: read from personal.json where enroll_bases.py --draws measured them already, unless
    only some `candidates` are asked for."""
    folders = sorted(p.parent for p in bases.glob(f"{pattern}/meta.json"))
    done = [] if candidates else [f for f in folders if (f / "personal.json").is_file()]
    rows = [row for f in done for row in json.loads((f / "personal.json").read_text(encoding="utf-8"))]
    todo = [f for f in folders if f not in done]
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
        results = pool.map(personal_fold, todo, [data_dir] * len(todo), [n_draws] * len(todo), [n_views] * len(todo),
                           [candidates] * len(todo))
        return rows + [row for part in results for row in part]


def summarise(rows: list[dict[str, Any]], role: str) -> str:
    """Mean top-1 per data set, k and method over folds, seeds and draws; the range of the fold means."""
    methods = ["zero-shot", *[m for m in CANDIDATES if m in rows[0]]]
    lines = [f"{role} signers: mean top-1 (lowest fold - highest fold), over folds, seeds and draws", "",
             "| data | k | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for data in sorted({r["data"] for r in rows}):
        for k in KS:
            sel = [r for r in rows if r["data"] == data and r["k"] == k and r["role"] == role]
            if not sel:
                continue
            cells = []
            for m in methods:
                folds = {}
                for r in sel:
                    folds.setdefault((r["seed"], r["signer"]), []).append(r[m])
                means = [float(np.mean(v)) for v in folds.values()]
                cells.append(f"{np.mean(means):.1%} ({min(means):.0%}-{max(means):.0%})")
            lines.append(f"| {data} | {k} | " + " | ".join(cells) + " |")
    seeds = sorted({r["seed"] for r in rows})
    lines += ["", f"{len({(r['seed'], r['signer'], r['data']) for r in rows if r['role'] == role})} folds, seeds {seeds}"]
    return "\n".join(lines)


def scratch(spec: FeatureSpec, arrays: list[np.ndarray], y: torch.Tensor, n_classes: int, seed: int) -> Any:
    """signrec's default network trained from nothing on these clips (already with their augmented views):
    AdamW, label smoothing, 30 passes; no clip is left to early-stop on."""
    from signrec.train.data import SpecFeaturizer

    torch.manual_seed(seed)
    net = models.build_model("lstm", spec.n_features, n_classes)
    x, mask = SpecFeaturizer(spec)(arrays)
    optimiser = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(30):
        for batch in torch.randperm(len(y), generator=generator).split(32):
            loss = torch.nn.functional.cross_entropy(net(x[batch], mask[batch]), y[batch], label_smoothing=0.1)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return net.eval()


def newsign_set(base: Path, csv_path: Path, n_draws: int, n_views: int) -> list[dict[str, Any]]:
    """Signs no base model learned: enrolled (the default and its parts) against training from scratch and a
    nearest neighbour on the features, on the same draws of k clips per sign."""
    from signrec import landmarks
    from signrec.landmarks import dataset
    from signrec.model.features import featurize
    from signrec.train.data import SpecFeaturizer

    torch.set_num_threads(1)
    model, meta = load_base(base)
    spec = FeatureSpec.from_dict(meta["feature_spec"])
    samples = dataset.read_labels(csv_path)
    arrays = [landmarks.load(s.path) for s in samples]
    signs = dataset.labels_of(samples)
    y = torch.tensor([signs.index(s.label) for s in samples])
    seen, source = views(arrays, n_views, seed=0)
    z_all = embed(model, spec, seen)
    clean = z_all[np.flatnonzero(np.r_[True, source[1:] != source[:-1]])]
    flat = np.stack([featurize(a, spec)[0].reshape(-1) for a in arrays])
    x_clean, mask_clean = SpecFeaturizer(spec)(arrays)
    methods = {"enrolled (default: head)": DEFAULT, "prototypes only": CANDIDATES["prototypes only"],
               "head + prototypes s=10": replace(DEFAULT, scale=10.0)}
    rows = []
    for k in (1, 3):
        for d, chosen in enumerate(draws([s.label for s in samples], k, n_draws, seed=1000 * k)):
            test = torch.from_numpy(~chosen)
            enrol = torch.from_numpy(chosen[source])
            row: dict[str, Any] = {"data": csv_path.parent.name, "base": base.name, "k": k, "draw": d,
                                   "n_test": int(test.sum())}
            for name, settings in methods.items():
                personal = adapt(model, z_all[enrol], y[source][enrol], [None] * len(signs), replace(settings, seed=d))
                with torch.no_grad():
                    row[name] = float((personal.head(clean[test]).argmax(1) == y[test]).float().mean())
            net = scratch(spec, [seen[i] for i in np.flatnonzero(enrol)], y[source][enrol], len(signs), seed=d)
            with torch.no_grad():
                row["from scratch"] = float((net(x_clean[test], mask_clean[test]).argmax(1) == y[test]).float().mean())
            train_idx, test_idx = np.flatnonzero(chosen), np.flatnonzero(~chosen)
            dist = ((flat[test_idx, None] - flat[None, train_idx]) ** 2).sum(-1)
            row["nearest neighbour, features"] = float(np.mean(y[train_idx][dist.argmin(1)].numpy() ==
                                                               y[test_idx].numpy()))
            rows.append(row)
    return rows


def newsign_table(rows: list[dict[str, Any]]) -> str:
    methods = [m for m in rows[0] if m not in ("data", "base", "k", "draw", "n_test")]
    lines = ["| data | base | k | " + " | ".join(methods) + " |", "|---|---|---|" + "---|" * len(methods)]
    for key in sorted({(r["data"], r["base"], r["k"]) for r in rows}):
        sel = [r for r in rows if (r["data"], r["base"], r["k"]) == key]
        cells = [f"{np.mean([r[m] for r in sel]):.1%} ({min(r[m] for r in sel):.0%}-{max(r[m] for r in sel):.0%})"
                 for m in methods]
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(cells) + " |")
    return "\n".join(lines + ["", f"mean (lowest draw - highest draw) over {len({r['draw'] for r in rows})} draws"])


def speed(model: Path, csv_path: Path, signer: str, repeats: int) -> str:
    """Wall and CPU time of `signrec enroll`'s work for 10 signs x 3 clips of one signer, from landmarks."""
    import tempfile
    import time

    from signrec.landmarks import dataset
    from signrec.train.enroll import enroll

    samples = [s for s in dataset.read_labels(csv_path) if s.signer == signer]
    chosen = [s for label in dataset.labels_of(samples)[:10] for s in [x for x in samples if x.label == label][:3]]
    lines = [f"enroll {len(chosen)} clips ({len({s.label for s in chosen})} signs) of {signer} into {model}: "
             f"torch threads {torch.get_num_threads()}"]
    with tempfile.TemporaryDirectory() as tmp:
        dataset.write_labels(Path(tmp) / "labels.csv", chosen)
        for i in range(repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            enroll(model, Path(tmp) / "labels.csv", Path(tmp) / f"out{i}")
            lines.append(f"run {i + 1}: {time.perf_counter() - wall:.1f} s wall, {time.process_time() - cpu:.1f} s CPU")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("personal")
    p.add_argument("bases", type=Path)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--views", type=int, default=DEFAULT.views)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", type=Path, help="also write every row as JSON here")
    p.add_argument("--folds", default="enroll-*", help="base model folders (a glob) [enroll-*]")
    p.add_argument("--candidates", nargs="+", help="measure only these candidates (names as in CANDIDATES)")
    n = sub.add_parser("newsigns")
    n.add_argument("bases", type=Path)
    n.add_argument("--sets", type=Path, nargs="+", required=True, help="labels.csv of landmark datasets")
    n.add_argument("--draws", type=int, default=5)
    n.add_argument("--views", type=int, default=DEFAULT.views)
    n.add_argument("--jobs", type=int, default=2)
    t = sub.add_parser("speed")
    t.add_argument("model", type=Path, help="a model folder")
    t.add_argument("--data", type=Path, required=True, help="labels.csv of landmarks with a signer column")
    t.add_argument("--signer", required=True)
    t.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.command == "speed":
        print(speed(args.model, args.data, args.signer, args.repeats))
        return
    if args.command == "newsigns":
        pairs = [(b.parent, s) for b in sorted(args.bases.glob("newsign-*/meta.json")) for s in args.sets]
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
            rows = [r for part in pool.map(newsign_set, *zip(*pairs, strict=True), [args.draws] * len(pairs),
                                            [args.views] * len(pairs)) for r in part]
        print(newsign_table(rows))
        return
    if args.command == "personal":
        rows = run_personal(args.bases, args.data, args.draws, args.views, args.jobs, args.folds, args.candidates)
        if args.out:
            args.out.write_text(json.dumps(rows), encoding="utf-8")
        print(summarise(rows, "test"), "\n", summarise(rows, "val"), sep="\n")


if __name__ == "__main__":
    main()
