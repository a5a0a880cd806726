"""Classifier networks behind a registry: features (B, T, F) + valid mask (B, T) -> logits (B, C).

Every network is two parts, as in timm's forward_features / forward_head: `encode(x, mask) -> (B, D)` pools a
sequence into one embedding, and `head(z) -> (B, C)` classifies it. Personal enrollment and "not a sign" work
on the embedding; `forward` is their composition. A new network subclasses SignNetwork and joins MODELS.

Both networks honour the mask everywhere (padding never changes a valid sequence's logits) and use
only ops that `torch.onnx.export` (opset 17) traces with dynamic batch and length, so no packed
sequences and no fused attention kernels.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import Tensor, nn

from signrec import SignrecError


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean over valid frames: x (B, T, D), mask (B, T) -> (B, D)."""
    weights = mask.to(x.dtype)[..., None]
    return (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def reversal_index(mask: Tensor) -> Tensor:
    """(B, T) frame indices that reverse each sequence within its valid length, padding left in place."""
    steps = torch.arange(mask.shape[1], device=mask.device)
    lengths = mask.long().sum(1, keepdim=True)
    return torch.where(steps[None, :] < lengths, lengths - 1 - steps[None, :], steps[None, :])


def gather_frames(x: Tensor, index: Tensor, width: int) -> Tensor:
    """x (B, T, width) at frame indices (B, T); `width` is a Python int so that ONNX needs no Shape op."""
    return torch.gather(x, 1, index[..., None].expand(-1, -1, width))


class AttentionPool(nn.Module):
    """Softmax-weighted mean over valid frames; the model learns which frames matter."""

    def __init__(self, dim: int):
        super().__init__()
        self.score = nn.Linear(dim, 1)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        score = self.score(x).squeeze(-1).masked_fill(~mask, -1e4)
        return (torch.softmax(score, dim=1)[..., None] * x).sum(1)


class SignNetwork(nn.Module):
    """The contract of every network: an encoder to a (B, embed_dim) embedding and a head on it."""

    embed_dim: int
    head: nn.Module

    def encode(self, x: Tensor, mask: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return self.head(self.encode(x, mask))


class LSTMClassifier(SignNetwork):
    """Projection + LayerNorm, stacked (bi)LSTM, mean and attention pooling over valid frames, MLP head.

    The backward direction runs on each sequence reversed within its own length, so padding at the
    end never reaches a valid frame (what pack_padded_sequence does, but exportable to ONNX).
    Hidden size 64: on unseen MLR511 signers it scored as well as 128 (mean of the 8 leave-one-signer-out
    folds 91.9 % against 90.9 %) at a third of the time in ONNX Runtime (BENCHMARKS.md).
    """

    def __init__(self, n_features: int, n_classes: int, *, hidden: int = 64, num_layers: int = 2,
                 bidirectional: bool = True, dropout: float = 0.3, input_dropout: float = 0.1):
        super().__init__()
        self.hidden = hidden
        self.project = nn.Sequential(nn.Linear(n_features, hidden), nn.LayerNorm(hidden), nn.GELU(),
                                     nn.Dropout(input_dropout))
        self.forward_layers = nn.ModuleList()
        self.backward_layers = nn.ModuleList()
        width = hidden * (2 if bidirectional else 1)
        for layer in range(num_layers):
            size_in = hidden if layer == 0 else width
            self.forward_layers.append(nn.LSTM(size_in, hidden, batch_first=True))
            if bidirectional:
                self.backward_layers.append(nn.LSTM(size_in, hidden, batch_first=True))
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(width)
        self.attention = AttentionPool(width)
        self.embed_dim = 2 * width
        self.head = nn.Sequential(nn.Linear(2 * width, hidden), nn.GELU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, n_classes))

    def encode(self, x: Tensor, mask: Tensor) -> Tensor:
        """Mean and attention pooling of the normalised last layer: (B, 2 * width)."""
        keep = mask[..., None].to(x.dtype)
        h = self.project(x) * keep
        # one zero state and one reversal for every layer: in ONNX each costs nodes per use, not per value
        zeros = h.new_zeros(1, h.shape[0], self.hidden)
        state = (zeros, zeros)
        reverse = reversal_index(mask) if self.backward_layers else None
        for layer, forward_lstm in enumerate(self.forward_layers):
            out = forward_lstm(h, state)[0]
            if reverse is not None:
                width = self.hidden if layer == 0 else 2 * self.hidden
                back = self.backward_layers[layer](gather_frames(h, reverse, width), state)[0]
                out = torch.cat([out, gather_frames(back, reverse, self.hidden)], dim=-1)
            h = self.dropout(out) * keep
        h = self.norm(h)
        return torch.cat([masked_mean(h, mask), self.attention(h, mask)], dim=-1)


class ConvBlock(nn.Module):
    """Pre-norm residual block: expand, depthwise temporal conv, gate, project (Kaggle ISLR style)."""

    def __init__(self, dim: int, kernel: int, expand: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.expand = nn.Linear(dim, dim * expand * 2)
        self.conv = nn.Conv1d(dim * expand, dim * expand, kernel, padding=kernel // 2, groups=dim * expand)
        self.project = nn.Linear(dim * expand, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        keep = mask[..., None].to(x.dtype)
        value, gate = self.expand(self.norm(x)).chunk(2, dim=-1)
        h = self.conv((value * keep).transpose(1, 2)).transpose(1, 2)  # padding is zero, as beyond the ends
        h = nn.functional.silu(h) * torch.sigmoid(gate)
        return x + self.dropout(self.project(h)) * keep


class AttentionBlock(nn.Module):
    """Pre-norm multi-head self-attention over valid frames, then a feed-forward layer."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        if dim % heads:
            raise SignrecError(f"transformer dim {dim} must be divisible by heads {heads}")
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        b, t, d = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        scores = (q @ k.transpose(-1, -2)) * (d // self.heads) ** -0.5
        scores = scores.masked_fill(~mask[:, None, None, :], -1e4)
        attended = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.dropout(self.out(attended))
        return x + self.dropout(self.ff(self.norm2(x)))


class TransformerClassifier(SignNetwork):
    """Depthwise-conv blocks interleaved with self-attention, masked mean pooling (after the best Kaggle
    ISLR solutions). The convolutions give the attention its sense of order: no positional embedding,
    so any length works."""

    def __init__(self, n_features: int, n_classes: int, *, dim: int = 128, depth: int = 2, convs_per_block: int = 2,
                 kernel: int = 15, expand: int = 2, heads: int = 4, dropout: float = 0.2, head_dropout: float = 0.3):
        super().__init__()
        self.stem = nn.Sequential(nn.Linear(n_features, dim), nn.LayerNorm(dim))
        self.blocks = nn.ModuleList()
        for _ in range(depth):
            self.blocks.extend(ConvBlock(dim, kernel, expand, dropout) for _ in range(convs_per_block))
            self.blocks.append(AttentionBlock(dim, heads, dropout))
        self.norm = nn.LayerNorm(dim)
        self.embed_dim = dim
        self.head = nn.Sequential(nn.Dropout(head_dropout), nn.Linear(dim, n_classes))

    def encode(self, x: Tensor, mask: Tensor) -> Tensor:
        """Masked mean of the normalised last block: (B, dim)."""
        h = self.stem(x) * mask[..., None].to(x.dtype)
        for block in self.blocks:
            h = block(h, mask)
        return masked_mean(self.norm(h), mask)


MODELS: dict[str, type[SignNetwork]] = {"lstm": LSTMClassifier, "transformer": TransformerClassifier}
DEFAULT_MODEL = "lstm"


def _model_class(name: str) -> type[SignNetwork]:
    if name not in MODELS:
        raise SignrecError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name]


def default_hparams(name: str = DEFAULT_MODEL) -> dict[str, Any]:
    """The keyword hyper-parameters of a model and their defaults."""
    params = inspect.signature(_model_class(name).__init__).parameters.values()
    return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


def build_model(name: str, n_features: int, n_classes: int, **hparams: Any) -> SignNetwork:
    """A fresh network; unknown hyper-parameters are refused, not ignored."""
    unknown = sorted(set(hparams) - set(default_hparams(name)))
    if unknown:
        raise SignrecError(f"model {name!r} has no hyper-parameter(s) {unknown}; known: {sorted(default_hparams(name))}")
    if n_features < 1 or n_classes < 1:
        raise SignrecError(f"need n_features >= 1 and n_classes >= 1, got {n_features} and {n_classes}")
    return _model_class(name)(n_features, n_classes, **hparams)
