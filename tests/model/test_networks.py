"""Classifier networks: shapes, masking, ONNX parity, and that they learn."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from signrec import SignrecError
from signrec.model.networks import MODELS, build_model, default_hparams


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run ~15x faster on one thread than on two on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)



SMALL = {"lstm": {"hidden": 32}, "transformer": {"dim": 32, "heads": 2}}


def make(name: str, n_features: int = 12, n_classes: int = 5) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(name, n_features, n_classes, **SMALL[name]).eval()


@pytest.mark.parametrize("name", MODELS)
def test_shapes_and_finite(name):
    logits = make(name)(torch.randn(3, 17, 12), torch.ones(3, 17, dtype=torch.bool))
    assert logits.shape == (3, 5) and torch.isfinite(logits).all()


@pytest.mark.parametrize("name", MODELS)
def test_padding_does_not_change_logits(name):
    model = make(name)
    x = torch.randn(2, 10, 12)
    mask = torch.tensor([[True] * 10, [True] * 6 + [False] * 4])
    with torch.no_grad():
        batched = model(x, mask)
        alone = model(x[1:, :6], mask[1:, :6])
        garbage = torch.cat([x[1:, :6], torch.randn(1, 5, 12) * 100], 1)
        padded = model(garbage, torch.arange(11)[None, :] < 6)
    torch.testing.assert_close(batched[1:], alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(padded, alone, atol=1e-5, rtol=0)


def test_hparams_registry_and_refusals():
    assert default_hparams("lstm")["hidden"] == 64 and default_hparams()["bidirectional"] is True
    assert set(default_hparams("transformer")) >= {"dim", "depth", "heads", "kernel"}
    with pytest.raises(SignrecError, match="unknown model"):
        build_model("gru", 10, 3)
    with pytest.raises(SignrecError, match="hyper-parameter"):
        build_model("lstm", 10, 3, hiden=64)
    with pytest.raises(SignrecError, match="divisible"):
        build_model("transformer", 10, 3, dim=30, heads=4)
    uni = build_model("lstm", 10, 3, hidden=16, num_layers=1, bidirectional=False)
    assert uni(torch.randn(2, 4, 10), torch.ones(2, 4, dtype=torch.bool)).shape == (2, 3)


def test_default_sizes_are_modest():
    sizes = {name: sum(p.numel() for p in build_model(name, 492, 64).parameters()) for name in MODELS}
    assert all(50_000 < n < 2_000_000 for n in sizes.values()), sizes


@pytest.mark.parametrize("name", MODELS)
def test_onnx_export_matches(name, tmp_path):
    model = make(name)
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(model, (torch.randn(2, 9, 12), torch.ones(2, 9, dtype=torch.bool)), path, dynamo=False,
                      opset_version=17, input_names=["x", "mask"], output_names=["logits"],
                      dynamic_axes={"x": {0: "batch", 1: "time"}, "mask": {0: "batch", 1: "time"}, "logits": {0: "batch"}})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch, frames in ((1, 5), (4, 23)):
        x = torch.randn(batch, frames, 12)
        mask = torch.arange(frames)[None, :] < torch.randint(1, frames + 1, (batch,))[:, None]
        with torch.no_grad():
            want = model(x, mask).numpy()
        got = session.run(None, {"x": x.numpy(), "mask": mask.numpy()})[0]
        assert np.abs(got - want).max() < 1e-4


@pytest.mark.parametrize("name", MODELS)
def test_a_few_steps_reduce_the_loss(name):
    """Class = sign of the mean of feature 0 over valid frames: learnable, and only from the valid frames."""
    torch.manual_seed(1)
    x = torch.randn(64, 12, 6)
    mask = torch.arange(12)[None, :] < torch.randint(4, 13, (64,))[:, None]
    y = ((x[..., 0] * mask).sum(1) > 0).long()
    model = build_model(name, 6, 2, **SMALL[name])
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = torch.nn.functional.cross_entropy(model(x, mask), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])
