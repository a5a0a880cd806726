"""The personal part of an enrolled model (train/enroll.py): the base network with a head of its own and prototypes.

It lives inside the network, so predict, serve and the exported ONNX graph run it like any other network;
`Classifier.load` builds one for a model.json with an `enrollment` entry.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class PersonalModel(nn.Module):
    """A base network with its head replaced by a personal one and prototypes added to its logits."""

    def __init__(self, base: nn.Module, prototypes: Tensor, enrolled: Tensor, scale: float):
        super().__init__()
        self.base = base
        self.embed_dim = base.embed_dim
        self.register_buffer("prototypes", F.normalize(prototypes, dim=1))   # (C, D), zero rows where not enrolled
        self.register_buffer("enrolled", enrolled.to(torch.float32))          # (C,) 1 where a prototype exists
        self.register_buffer("scale", torch.tensor(float(scale)))

    @classmethod
    def fitting(cls, base: nn.Module, state: dict[str, Tensor]) -> PersonalModel:
        """An empty personal model shaped for the saved weights `state` (filled by load_state_dict)."""
        return cls(base, torch.zeros(state["prototypes"].shape), torch.zeros(len(state["enrolled"])), 0.0)

    def encode(self, x: Tensor, mask: Tensor) -> Tensor:
        return self.base.encode(x, mask)

    def head(self, z: Tensor) -> Tensor:
        cosine = F.normalize(z, dim=1) @ self.prototypes.T
        neutral = (cosine * self.enrolled).sum(1, keepdim=True) / self.enrolled.sum().clamp(min=1.0)
        term = cosine * self.enrolled + neutral * (1 - self.enrolled)
        return self.base.head(z) + self.scale * term

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return self.head(self.encode(x, mask))
