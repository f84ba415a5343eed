"""The chapter 5 reference layer inside PyTorch (python/idattn_torch): torch.autograd.gradcheck
in float64 for every variant, and the nn.Module's parameter gradients equal to idattn.layer_backward.

Skipped, with the reason, where PyTorch is not installed (exit code 77, which CTest reports as
skipped); scripts/run.sh installs Debian's python3-torch so that it runs in CI.
"""
import sys

try:
    import torch
except ImportError as e:  # pragma: no cover - depends on the machine
    print(f"SKIPPED: PyTorch is not installed ({e}); install python3-torch to run this test")
    sys.exit(77)

import numpy as np

import idattn
import idattn_torch

VARIANTS = ["full", "norope", "dualkv", "single", "s4d", "softmax"]


def perturbed(variant, seed, gate):
    """layer_init's parameters moved off every special point (b = 0, g = 1, C = I), log Delta larger."""
    rng = np.random.default_rng(seed)
    p = idattn.layer_init(variant, D=4, H=2, R=2, d=2, M=2, seed=seed, gate=gate)
    for n in p:
        if n == "heads":
            continue
        if n == "log_dt":
            p[n] = rng.uniform(np.log(0.05), np.log(0.5), size=p[n].shape)
        else:
            p[n] = p[n] + 0.3 * rng.standard_normal(p[n].shape)
    return p


def test_gradcheck():
    for i, variant in enumerate(VARIANTS):
        p = perturbed(variant, 10 + i, gate=(i % 2 == 0))
        names = sorted(n for n in p if n != "heads")
        x = torch.randn(2, 5, 4, dtype=torch.float64, requires_grad=True)
        params = [torch.tensor(p[n], dtype=torch.float64, requires_grad=True) for n in names]
        settings = dict(variant=variant, heads=p["heads"], rope=None, rope_order="before-xi", form="chunked",
                        chunk=3, backward="stored", checkpoint=16)
        ok = torch.autograd.gradcheck(lambda x, *ps: idattn_torch.LayerFunction.apply(settings, names, x, *ps),
                                      (x, *params), eps=1e-6, atol=1e-7, rtol=1e-6)
        assert ok, variant
        print(f"gradcheck {variant}: passed ({len(names)} parameter arrays and x, float64)")


def test_module_gradients_equal_the_reference():
    for variant in VARIANTS:
        layer = idattn_torch.InterdomainLayer(variant, params=perturbed(variant, 3, gate=True),
                                              backward="lambda-division", checkpoint=4)
        assert sorted(n for n, _ in layer.named_parameters()) == layer.names
        x = torch.randn(1, 9, 4, dtype=torch.float64)
        w = torch.randn(1, 9, 4, dtype=torch.float64)
        (layer(x) * w).sum().backward()
        g = idattn.layer_backward(layer.export_params(), x.numpy(), w.numpy(), variant,
                                  backward="lambda-division", checkpoint=4)
        for n, t in layer.named_parameters():
            assert np.array_equal(t.grad.numpy(), g[n]), (variant, n)
        print(f"module {variant}: every .grad equals idattn.layer_backward")


if __name__ == "__main__":
    test_gradcheck()
    test_module_gradients_equal_the_reference()
    print("all PyTorch interop tests passed")
