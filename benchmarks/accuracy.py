"""Accuracy on signers never seen in training: the popular tutorial model against signrec's networks.

    python benchmarks/accuracy.py                       # everything below (long: run it on an idle machine)
    python benchmarks/accuracy.py --data lsa64 --models tutorial lstm --folds 2
    python benchmarks/accuracy.py --data mlr511 --models lstm --train-signers 2 4   # fewer people to learn from

Same splits for every model:
- mlr511_arsl (800 videos, 10 signs, 8 signers): leave-one-signer-out, the next signer validates;
- lsa64_hands (1000 hands-only sequences, 25 signs, 8 signers): train 001-006 / validate 007 / test 008,
  and leave-one-signer-out.
Models:
- tutorial: a faithful PyTorch port of the MediaPipe + LSTM tutorial (Keras LSTM(64, 128, 64, relu),
  Dense(64, 32, relu), softmax; Adam 1e-3, batch 32), on raw 1662-value MP_Data frames (zeros where
  missing), 30 frames per sequence, no normalisation, no augmentation;
- lstm, transformer: `signrec train` defaults (TrainConfig(), FeatureSpec(), augmentation).
--train-signers K trains each leave-one-signer-out fold on K signers only, the K after its validation signer
(cyclically), to show how accuracy on a new signer grows with the number of people in training. With
K = signers - 1 the validation signer is trained on too (early stopping then watches a signer it has seen).
All are trained with the same early stopping on validation loss. Landmarks of mlr511 come from the
extraction cache (`signrec extract`/open_dataset); lsa64 is converted with formats.from_hands.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from signrec import landmarks
from signrec.landmarks import dataset, formats
from signrec.landmarks.store import FolderStore, load_all
from signrec.train.config import TrainConfig
from signrec.train.fit import fit
from signrec.train.run import train_split
from signrec.train.run_folder import RunFolder
from signrec.video.batch import open_dataset

DATA = Path(os.environ.get("SIGNREC_DATA_MIRROR") or Path(__file__).resolve().parents[2] / "shared" / "data")
TUTORIAL_FRAMES = 30


class KerasLSTM(nn.Module):
    """keras.layers.LSTM(units, activation="relu"): sigmoid gates, ReLU for the cell input and output,
    Glorot/orthogonal initialisation, forget-gate bias 1, as the tutorial's layers are."""

    def __init__(self, n_in: int, units: int, return_sequences: bool):
        super().__init__()
        self.units, self.return_sequences = units, return_sequences
        self.kernel = nn.Linear(n_in, 4 * units)
        self.recurrent = nn.Linear(units, 4 * units, bias=False)
        nn.init.xavier_uniform_(self.kernel.weight)
        for gate in range(4):
            nn.init.orthogonal_(self.recurrent.weight.data[gate * units:(gate + 1) * units])
        nn.init.zeros_(self.kernel.bias)
        self.kernel.bias.data[units:2 * units] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        h = x.new_zeros(b, self.units)
        c = x.new_zeros(b, self.units)
        inputs = self.kernel(x)
        outputs = []
        for step in range(t):
            i, f, g, o = (inputs[:, step] + self.recurrent(h)).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.relu(g)
            h = torch.sigmoid(o) * torch.relu(c)
            outputs.append(h)
        return torch.stack(outputs, 1) if self.return_sequences else h


class TutorialModel(nn.Module):
    """Sequential([LSTM(64, rs), LSTM(128, rs), LSTM(64), Dense(64, relu), Dense(32, relu), Dense(n, softmax)])."""

    def __init__(self, n_classes: int, n_in: int = 1662):
        super().__init__()
        self.lstm = nn.Sequential(KerasLSTM(n_in, 64, True), KerasLSTM(64, 128, True), KerasLSTM(128, 64, False))
        self.head = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, n_classes))
        for layer in self.head:
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(x))  # softmax is inside the cross-entropy loss


def tutorial_features(arrays) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw MP_Data 1662-vectors, each sequence resampled (nearest frame) to 30 frames."""
    out = np.stack([formats.to_mpdata_frames(a)[np.linspace(0, len(a) - 1, TUTORIAL_FRAMES).round().astype(int)]
                    for a in arrays])
    return torch.from_numpy(out), torch.ones(out.shape[:2], dtype=torch.bool)


TUTORIAL_CONFIG = TrainConfig(optimizer="adamw", lr=1e-3, weight_decay=0.0, schedule="constant", label_smoothing=0.0,
                              augment=False, max_epochs=150)
"""Adam (AdamW without decay) at Keras' default 1e-3, no schedule or smoothing; the same early stopping
(the tutorial runs 2000 epochs without validation; 150 caps the time, early stopping ends sooner)."""


def run_one(model: str, split: dataset.Split, arrays: dict, labels: list[str], seed: int, out: Path,
            max_epochs: int | None) -> dict:
    cap = {"max_epochs": max_epochs} if max_epochs else {}
    if model == "tutorial":
        index = {label: i for i, label in enumerate(labels)}

        def part(samples):
            return [arrays[s.key] for s in samples], [index[s.label] for s in samples]

        config = dataclasses.replace(TUTORIAL_CONFIG, seed=seed, **cap)
        torch.manual_seed(seed)
        result = fit(TutorialModel(len(labels)), part(split.train), part(split.val), tutorial_features, config,
                     RunFolder(out),                     progress=False)
        test_arrays, y = part(split.test)
        x, mask = tutorial_features(test_arrays)
        with torch.no_grad():
            pred = result.model.eval()(x, mask).argmax(1).numpy()
        return {"top1": float(np.mean(pred == np.array(y))), "epochs": result.epochs, "seconds": result.seconds}
    config = TrainConfig(model=model, seed=seed, **cap)
    metrics = train_split(split, arrays, RunFolder(out), config, labels, progress=False)
    assert metrics is not None
    return {"top1": metrics["test"]["top1"], "epochs": metrics["epochs"], "seconds": metrics["fit_seconds"]}


def with_train_signers(split: dataset.Split, signers: list[str], k: int) -> dataset.Split:
    """A LOSO fold trained on k signers: those after its validation signer; k = all but the test signer adds
    the validation signer itself."""
    val = dataset.signers_of(split.val)[0]
    if k == len(signers) - 1:
        return dataclasses.replace(split, train=split.train + split.val, how=f"{split.how}, {val} trained on too")
    first = signers.index(val) + 1
    keep = [signers[(first + j) % len(signers)] for j in range(k)]
    return dataclasses.replace(split, train=[s for s in split.train if s.signer in keep],
                               how=f"{split.how}, trained on {keep} only")


def lsa64_landmarks(work: Path) -> Path:
    """LSA64 hands as (T, 543, 3) landmark files (what `signrec import hands` writes)."""
    target = work / "lsa64_landmarks"
    if not (target / "labels.csv").is_file():
        formats.import_hands(DATA / "lsa64_hands" / "labels.csv", target)
    return target / "labels.csv"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", choices=("mlr511", "lsa64"), default=["mlr511", "lsa64"])
    parser.add_argument("--models", nargs="+", choices=("tutorial", "lstm", "transformer"),
                        default=["tutorial", "lstm", "transformer"])
    parser.add_argument("--folds", type=int, help="only the first N LOSO folds (0: none; a partial benchmark, say so when quoting it)")
    parser.add_argument("--max-epochs", type=int, help="cap on epochs (smoke test; not the benchmark)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-signers", type=int, nargs="+", metavar="K",
                        help="also run the LOSO folds with only K training signers (1 to signers - 1)")
    parser.add_argument("--work", type=Path, help="scratch folder for runs (default: a temporary folder)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="signrec-bench-"))
    print(f"# accuracy benchmark: {platform.machine()}, {os.cpu_count()} cores, 1 torch thread per training "
          f"(TrainConfig.threads), load average at start {os.getloadavg()[0]:.1f}, seed {args.seed}", flush=True)

    rows = []
    for name in args.data:
        store = (open_dataset(DATA / "mlr511_arsl" / "labels.csv") if name == "mlr511"
                 else FolderStore.open(lsa64_landmarks(work)))
        samples, loaded, bad = load_all(store)
        if bad:
            print(f"{name}: skipped {len(bad)} unreadable file(s), e.g. {bad[0]}", file=sys.stderr)
        arrays = dict(zip((s.key for s in samples), loaded, strict=True))
        labels = dataset.labels_of(samples)
        protocols = []
        if name == "lsa64":
            protocols.append(("fixed", "train 001-006 / val 007 / test 008",
                              [("008", dataset.split_by_signer(samples, ["008"], ["007"]))]))
        signers = dataset.signers_of(samples)
        folds = dataset.loso_folds(samples)[: args.folds]
        if folds:
            protocols.append(("loso", f"LOSO, {len(folds)} of {len(signers)} signers", folds))
        for k in args.train_signers or ():
            if not 1 <= k < len(signers):
                parser.error(f"--train-signers: {name} has {len(signers)} signers, so K must be 1 to {len(signers) - 1}")
            protocols.append((f"loso-k{k}", f"LOSO, {len(folds)} of {len(signers)} signers, {k} training signers",
                              [(signer, with_train_signers(split, signers, k)) for signer, split in folds]))
        for tag, protocol, splits in protocols:
            for model in args.models:
                results = []
                for signer, split in splits:
                    start = time.perf_counter()
                    r = run_one(model, split, arrays, labels, args.seed, work / name / tag / model / f"test-{signer}",
                                args.max_epochs)
                    results.append(r)
                    print(f"{name} {model} test={signer}: top-1 {r['top1']:.1%}, {r['epochs']} epochs, "
                          f"fit {r['seconds']:.0f} s (total {time.perf_counter() - start:.0f} s)", flush=True)
                rows.append({"data": name, "protocol": protocol, "model": model, "n": len(results),
                             "top1": np.mean([r["top1"] for r in results]),
                             "folds": " ".join(f"{r['top1']:.0%}" for r in results),
                             "epochs": np.mean([r["epochs"] for r in results]),
                             "seconds": np.mean([r["seconds"] for r in results])})
    print()
    print("| data | split | model | mean top-1 | per test signer | epochs | time to early stop (s) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['data']} | {r['protocol']} | {r['model']} | **{r['top1']:.1%}** | {r['folds']} "
              f"| {r['epochs']:.0f} | {r['seconds']:.0f} |")
    print(f"\nlandmark layout {landmarks.LAYOUT}; load average at end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
