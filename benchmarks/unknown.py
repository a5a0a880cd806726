""""Not a sign": how well scores of a model tell its own signs from anything else.

    python benchmarks/unknown.py BASES --mlr511 LABELS.csv --wlasl LABELS.csv [--jobs 2]

BASES holds benchmarks/enroll_bases.py's models: `unknown-mlr511-*` (7 of MLR511's 10 signs, a signer held out)
and `enroll-mlr511-*` (all 10). Known: the held-out signer's clips of the model's signs. Unknown, per source:
the held-out signer's clips of the 3 other signs; WLASL clips (another sign language); no signing made from the
held-out signer's clips: "still hands" (the first frame with a raised hand, held for the clip's length),
"hands down" (the clip without its hands) and "no person" (nothing detected). Scores (higher = known):
max softmax, energy (log-sum-exp of the logits), the largest cosine of the embedding to the training signs'
mean embeddings. The threshold keeps 95 % of the validation signer's known clips (never the test signer's).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from enroll import embed, load_base  # noqa: E402
from signrec import landmarks  # noqa: E402
from signrec.landmarks import dataset  # noqa: E402
from signrec.model.features import FeatureSpec  # noqa: E402

SCORES = ("max softmax", "energy", "prototype cosine")


def no_signing(array: np.ndarray) -> dict[str, np.ndarray]:
    """Stretches without a sign made from one clip (see the module's docstring)."""
    hands = np.r_[landmarks.PARTS["left_hand"], landmarks.PARTS["right_hand"]]
    seen = ~np.isnan(array[:, hands, 0]).all(1)
    still = np.repeat(array[np.argmax(seen)][None], len(array), axis=0)
    down = array.copy()
    down[:, hands] = np.nan
    return {"still hands": still, "hands down": down, "no person": landmarks.empty(len(array))}


def scores(model: torch.nn.Module, spec: FeatureSpec, arrays: list[np.ndarray], protos: torch.Tensor) -> np.ndarray:
    """(N, len(SCORES))."""
    z = embed(model, spec, arrays)
    with torch.no_grad():
        logits = model.head(z)
    msp = torch.softmax(logits, 1).max(1).values
    energy = torch.logsumexp(logits, 1)
    cosine = (F.normalize(z, dim=1) @ protos.T).max(1).values
    return torch.stack([msp, energy, cosine], 1).numpy()


def fold(folder: Path, mlr_csv: Path, wlasl_csv: Path) -> dict[str, Any]:
    torch.set_num_threads(1)
    model, meta = load_base(folder)
    spec = FeatureSpec.from_dict(meta["feature_spec"])
    samples = dataset.read_labels(mlr_csv)
    arrays = [landmarks.load(s.path) for s in samples]
    index = {label: i for i, label in enumerate(meta["labels"])}
    train = [i for i, s in enumerate(samples) if s.signer in meta["train_signers"] and s.label in index]
    z = F.normalize(embed(model, spec, [arrays[i] for i in train]), dim=1)
    y = torch.tensor([index[samples[i].label] for i in train])
    protos = F.normalize(torch.stack([z[y == c].mean(0) for c in range(len(index))]), dim=1)

    def of(signer: str, known: bool) -> list[np.ndarray]:
        return [arrays[i] for i, s in enumerate(samples) if s.signer == signer and (s.label in index) == known]

    test_known = of(meta["test"], True)
    sets: dict[str, list[np.ndarray]] = {"known (test signer)": test_known, "known (val signer)": of(meta["val"], True)}
    if meta["drop"]:
        sets["other signs"] = of(meta["test"], False)
    sets["wlasl"] = [landmarks.load(s.path) for s in dataset.read_labels(wlasl_csv)]
    made = defaultdict(list)
    for a in test_known:
        for name, stretch in no_signing(a).items():
            made[name].append(stretch)
    sets.update(made)
    return {"name": folder.name, "drop": meta["drop"],
            "scores": {name: scores(model, spec, arrs, protos).tolist() for name, arrs in sets.items()}}


def table(results: list[dict[str, Any]], kind: str) -> str:
    from sklearn.metrics import roc_auc_score

    sources = [s for s in results[0]["scores"] if not s.startswith("known")]
    lines = [f"{kind}: mean over {len(results)} folds; AUROC / known kept at 95 % of unknowns rejected / "
             "at the threshold calibrated on the validation signer: known kept, unknown rejected", "",
             "| source | " + " | ".join(SCORES) + " |", "|---|" + "---|" * len(SCORES)]
    for source in sources:
        cells = []
        for j, _ in enumerate(SCORES):
            auc, kept95, kept, rejected = [], [], [], []
            for r in results:
                known = np.array(r["scores"]["known (test signer)"])[:, j]
                other = np.array(r["scores"][source])[:, j]
                threshold = np.quantile(np.array(r["scores"]["known (val signer)"])[:, j], 0.05)
                auc.append(roc_auc_score(np.r_[np.ones(len(known)), np.zeros(len(other))], np.r_[known, other]))
                kept95.append(np.mean(known > np.quantile(other, 0.95)))
                kept.append(np.mean(known >= threshold))
                rejected.append(np.mean(other < threshold))
            cells.append(f"{np.mean(auc):.3f} / {np.mean(kept95):.0%} / {np.mean(kept):.0%}, {np.mean(rejected):.0%}")
        lines.append(f"| {source} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bases", type=Path)
    parser.add_argument("--mlr511", type=Path, required=True, help="labels.csv of the MLR511 landmarks")
    parser.add_argument("--wlasl", type=Path, required=True, help="labels.csv of the WLASL landmarks")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, help="also write the scores as JSON here")
    parser.add_argument("--seeds", nargs="+", default=["0"], help="base models of these seeds [0]")
    args = parser.parse_args()
    folders = sorted(p.parent for p in args.bases.glob("*-mlr511-s*-*/meta.json")
                     if p.parent.name.startswith(("unknown-", "enroll-"))
                     and p.parent.name.split("-")[2][1:] in args.seeds)
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        results = list(pool.map(fold, folders, [args.mlr511] * len(folders), [args.wlasl] * len(folders)))
    if args.out:
        args.out.write_text(json.dumps(results), encoding="utf-8")
    for kind in ("unknown", "enroll"):
        chosen = [r for r in results if r["name"].startswith(kind)]
        if chosen:
            print(table(chosen, "7 of 10 signs known" if kind == "unknown" else "all 10 signs known"), "\n")


if __name__ == "__main__":
    main()
