"""Enrollment: a trained model adapted to one person from a few clips of theirs, new signs included.

The base network's encoder is kept as it is; on its embedding of the person's clips (each seen as it was and in
`views` augmented copies) enrollment builds
- a personal head: the base head, its output layer extended by the new signs (their rows started from the mean
  input of their clips), fine-tuned on the person's clips with an L2 pull towards the weights it started from,
  so that a few clips move it only where they disagree with the base model;
- optionally (`scale` > 0) prototypes: each enrolled sign's mean embedding; the cosine to them, times `scale`, is
  added to the head's logits. Signs of the base model without clips of this person get the mean of the others'
  cosine terms, which changes nothing between them.
Both live inside the network (model/personal.py), so predict, serve and the exported ONNX graph use them.
Chosen by benchmarks/enroll.py on the validation signers of 32 leave-one-signer-out folds (BENCHMARKS.md,
"Enrollment"): the head with a weak pull (0.01) scored best there; prototypes alone or added did not beat it.
"""

from __future__ import annotations

import copy
import os
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from signrec import SignrecError
from signrec.model import unknown
from signrec.model.personal import PersonalModel


class EnrollError(SignrecError):
    """Enrollment data or settings that can not be used, with the file or sign named."""


@dataclass(frozen=True)
class EnrollSettings:
    """How a base model is adapted; saved in model.json. Defaults chosen by benchmarks/enroll.py."""

    views: int = 8          # augmented copies of every clip, besides the clip itself
    steps: int = 100        # Adam steps of head fine-tuning (0: prototypes only)
    lr: float = 3e-3
    anchor: float = 0.01    # weight of the L2 pull towards the starting weights (sum of squares)
    scale: float = 0.0      # weight of the cosine to the prototypes (0: none; 10 scored no better)
    seed: int = 0

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def output_layer(head: nn.Module) -> nn.Linear:
    """The last linear layer of a head: the one with a row per sign."""
    layers = [m for m in head.modules() if isinstance(m, nn.Linear)]
    if not layers:
        raise EnrollError(f"this network's head has no linear layer to extend: {head}")
    return layers[-1]


def _before_output(head: nn.Module) -> nn.Module:
    """The head up to its output layer (the identity if the output layer is the head)."""
    if isinstance(head, nn.Sequential):
        return head[:-1]
    return nn.Identity()




def views(arrays: Sequence[np.ndarray], n: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Each array as it is and in `n` augmented copies (training's augmentation); the index of its source."""
    from signrec.train.augment import default_augmentation

    augment = default_augmentation()
    rng = np.random.default_rng(seed)
    out, source = [], []
    for i, a in enumerate(arrays):
        out.append(a)
        source.append(i)
        for _ in range(n):
            out.append(augment(a, rng))
            source.append(i)
    return out, np.array(source)


def personal_head(head: nn.Module, z: Tensor, y: Tensor, rows: Sequence[int | None],
                  settings: EnrollSettings) -> nn.Module:
    """A copy of `head` whose output c is the base's output rows[c] (None: a new sign, started from the mean of
    its clips' hidden features, as long as the base rows), fine-tuned on embeddings z (N, D) labelled y (N,)
    with a pull towards where it started."""
    head = copy.deepcopy(head).eval()
    layer = output_layer(head)
    with torch.no_grad():
        hidden = _before_output(head)(z)
        norm = layer.weight.norm(dim=1).mean()
        weight = torch.zeros(len(rows), layer.in_features)
        bias = torch.full((len(rows),), float(layer.bias.mean()))
        for c, row in enumerate(rows):
            if row is not None:
                weight[c], bias[c] = layer.weight[row], layer.bias[row]
            elif (y == c).any():
                weight[c] = F.normalize(hidden[y == c].mean(0), dim=0) * norm
    grown = nn.Linear(layer.in_features, len(rows))
    grown.weight.data, grown.bias.data = weight, bias
    head = _replace(head, layer, grown)
    if settings.steps == 0:
        return head
    start = [p.detach().clone() for p in head.parameters()]
    optimiser = torch.optim.Adam(head.parameters(), lr=settings.lr)
    generator = torch.Generator().manual_seed(settings.seed)
    for _ in range(settings.steps):
        batch = torch.randint(len(y), (min(len(y), 256),), generator=generator)
        loss = F.cross_entropy(head(z[batch]), y[batch])
        pull = sum(((p - p0) ** 2).sum() for p, p0 in zip(head.parameters(), start, strict=True))
        optimiser.zero_grad()
        (loss + settings.anchor * pull).backward()
        optimiser.step()
    return head.eval()


def held_out_proba(model: nn.Module, z: Tensor, y: Tensor, source: np.ndarray, take: np.ndarray,
                   rows: Sequence[int | None], settings: EnrollSettings) -> np.ndarray | None:
    """Each clip's probabilities (N, C) under a personal model fitted without that clip's take
    (leave-one-take-out): how sure the personal model is of this person's clips it has not seen, which is what
    its unknown threshold is calibrated on. None when a sign has a single clip, so no take can be held out.

    z, y hold every view; source[i] is view i's clip and take[j] is clip j's repetition number within its sign.
    """
    first = np.flatnonzero(np.r_[True, source[1:] != source[:-1]])   # each clip's view as it was recorded
    counts = np.bincount(y[first].numpy())
    if counts[counts > 0].min() < 2:
        return None
    proba = np.zeros((len(take), len(rows)))
    for fold in np.unique(take):
        held = np.flatnonzero(take == fold)
        rest = ~np.isin(source, held)
        fitted = adapt(model, z[rest], y[rest], rows, settings)
        with torch.no_grad():
            proba[held] = torch.softmax(fitted.head(z[first[held]]), dim=1).numpy()
    return proba


def _replace(head: nn.Module, old: nn.Module, new: nn.Module) -> nn.Module:
    if head is old:
        return new
    for name, child in head.named_children():
        if child is old:
            setattr(head, name, new)
            return head
        _replace(child, old, new)
    return head


def prototypes(z: Tensor, y: Tensor, n_classes: int) -> tuple[Tensor, Tensor]:
    """Mean normalised embedding per class (C, D) and whether the class has any (C,)."""
    z = F.normalize(z, dim=1)
    protos = torch.zeros(n_classes, z.shape[1])
    has = torch.zeros(n_classes, dtype=torch.bool)
    for c in range(n_classes):
        if (y == c).any():
            protos[c] = z[y == c].mean(0)
            has[c] = True
    return protos, has


def adapt(model: nn.Module, z: Tensor, y: Tensor, rows: Sequence[int | None],
          settings: EnrollSettings) -> PersonalModel:
    """The personal model from a base `model` and embeddings z (N, D) of the person's clips labelled y (N,):
    output c is the base's output rows[c], or a new sign where that is None."""
    base = copy.deepcopy(model).eval()
    base.head = personal_head(base.head, z, y, rows, settings)
    protos, has = prototypes(z, y, len(rows))
    return PersonalModel(base, protos, has, settings.scale).eval()


# ---- a model folder from a base model and a person's clips ----------------------------------------------------
def _key(label: str) -> str:
    return unicodedata.normalize("NFC", " ".join(label.split())).casefold()


def check_labels(base: Sequence[str], person: Sequence[str]) -> None:
    """A person's sign that differs from a base sign only in case, spacing or Unicode form is a clash: it is
    not clear whether it is that sign or a new one, so it is refused with both names."""
    by_key = {_key(b): b for b in base}
    clashes = [f"{p!r} (base model: {by_key[_key(p)]!r})" for p in person if _key(p) in by_key and p not in base]
    if clashes:
        raise EnrollError(f"label clash: {', '.join(clashes)}; use the base model's name to adapt that sign, or "
                          "a name of its own for a new sign")


def person_samples(data: str | os.PathLike, classifier: Any) -> list[Any]:
    """The samples of PERSON_DATA as landmark files: a labels.csv or `<label>/<clip>` folder of videos (extracted
    with the model's landmark models) or of landmark .npy files, refused if made with other landmark models."""
    from signrec.landmarks.dataset import Sample
    from signrec.video.batch import open_dataset

    data = Path(data)
    if data.is_dir() and not (data / "labels.csv").is_file() and any(data.glob("*/*.npy")):
        return [Sample(p.resolve(), p.parent.name) for p in sorted(data.glob("*/*.npy"))]
    store = open_dataset(data, classifier.landmark_settings(), progress=False)
    classifier.check_landmarks(store.landmark_models, data)
    return store.samples


def usable(samples: Sequence[Any]) -> tuple[list[Any], list[np.ndarray], dict[str, str]]:
    """Samples whose landmarks load and show a hand in some frame, their arrays, and why the others are not."""
    from signrec import landmarks

    kept, arrays, skipped = [], [], {}
    for s in samples:
        try:
            array = landmarks.load(s.path)
        except landmarks.LandmarkError as exc:
            skipped[str(s.path)] = str(exc)
            continue
        hands = np.r_[landmarks.PARTS["left_hand"], landmarks.PARTS["right_hand"]]
        if np.isnan(array[:, hands, 0]).all():
            skipped[str(s.path)] = "no hand found in any frame"
            continue
        kept.append(s)
        arrays.append(array)
    return kept, arrays, skipped


def enroll(base_path: str | os.PathLike, data: str | os.PathLike, out: str | os.PathLike, signer: str | None = None,
           only_enrolled: bool = False, settings: EnrollSettings = EnrollSettings()) -> dict[str, Any]:
    """Write to `out` the model of `base_path` adapted to the person in `data`; returns its enrollment record.

    Its signs are the base model's followed by the person's new ones, or with `only_enrolled` just the person's.
    The base folder is only read.
    """
    from signrec.evaluate.card import model_card
    from signrec.model.artifact import Classifier

    base_path, out = Path(base_path), Path(out)
    if out.resolve() == base_path.resolve():
        raise EnrollError(f"{out}: that is the base model; the personal model needs a folder of its own")
    if (out / "model.json").is_file():
        raise EnrollError(f"{out} already holds a model; choose another --out")
    start = time.perf_counter()
    classifier = Classifier.load(base_path)
    if classifier.meta.get("enrollment"):
        raise EnrollError(f"{base_path} is already a personal model (of {classifier.meta['enrollment']['signer']!r}); "
                          f"enroll from its base model, {classifier.meta['enrollment']['base']['path']}")
    samples = person_samples(data, classifier)
    kept, arrays, skipped = usable(samples)
    signs = sorted({s.label for s in kept})
    empty = sorted({s.label for s in samples} - set(signs))
    if empty:
        files = [str(s.path) for s in samples if s.label in empty]
        raise EnrollError(f"{data}: no usable clip of {', '.join(map(repr, empty))}: " +
                          "; ".join(f"{p}: {skipped[p]}" for p in files))
    check_labels(classifier.labels, signs)
    names = sorted({s.signer for s in kept if s.signer})
    if signer is None and len(names) > 1:
        raise EnrollError(f"{data}: clips of {len(names)} signers ({', '.join(names)}); enrollment is for one "
                          "person: keep one signer's clips or name the person with --signer")
    labels = signs if only_enrolled else classifier.labels + [s for s in signs if s not in classifier.labels]
    rows = [classifier.labels.index(label) if label in classifier.labels else None for label in labels]
    model = classifier.network().model
    seen, source = views(arrays, settings.views, settings.seed)
    z = torch.from_numpy(classifier.embed(seen))
    y = torch.tensor([labels.index(kept[i].label) for i in source])
    personal = adapt(model, z, y, rows, settings)
    take = np.array([[s.label for s in kept[:i]].count(s.label) for i, s in enumerate(kept)])
    held = held_out_proba(model, z, y, source, take, rows, settings)
    with torch.no_grad():
        clean = np.flatnonzero(np.r_[True, source[1:] != source[:-1]])
        own = float((personal.head(z[clean]).argmax(1) == y[clean]).float().mean())
    record = {
        "base": {"path": str(base_path.resolve()), "weights_sha256": classifier.weights_digest(),
                 "labels": classifier.labels},
        "signer": signer or (names[0] if names else None),
        "data": str(Path(data).resolve()),
        "signs": {label: sum(s.label == label for s in kept) for label in signs},
        "new_signs": [label for label in signs if label not in classifier.labels],
        "only_enrolled": only_enrolled,
        "skipped_files": skipped,
        "settings": settings.to_dict(),
        "check": {"top1_on_enrollment_clips": own, "seconds": round(time.perf_counter() - start, 2)},
    }
    # the base's scores, threshold and card describe the base network, not this one
    meta = {k: v for k, v in classifier.meta.items() if k not in ("metrics", "unknown", "card")}
    result = Classifier(labels, classifier.spec, classifier.model_name, classifier.hparams, model=personal,
                        meta={**meta, "enrollment": record})
    if held is not None:
        result.meta["unknown"] = unknown.calibrate(
            held, f"{record['signer'] or 'the person'}'s, each scored by a personal model fitted without its take",
            clips="enrollment clips")
    else:
        record["unknown"] = (f"not calibrated: a sign has a single clip, so no take can be held out; the default "
                             f"threshold {unknown.DEFAULT_THRESHOLD} is used")
    result.meta["card"] = model_card(result.describe())
    result.save(out)
    return record
