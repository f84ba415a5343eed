"""The chapter 5 reference layer inside PyTorch.

A pure-Python package over ``idattn`` (the compiled float64 reference): the
layer's forward and hand-written backward wrapped as a ``torch.autograd.Function``
and a ``torch.nn.Module`` whose parameters carry the names of chapter 5's contract,
so that a PyTorch model can use the reference layer (CPU, float64) and check
its own implementation against it.

    import torch, idattn_torch
    layer = idattn_torch.InterdomainLayer("full", D=64, H=4, R=16, d=16, M=16, seed=0)
    y = layer(torch.randn(2, 128, 64, dtype=torch.float64))   # (B, N, D)
    y.square().sum().backward()                                 # layer.W_q.grad, layer.C.grad, ...

Complex parameters (B, C) are real tensors with a trailing axis of 2 (real,
imaginary), as in the parameter files; their gradients are (dL/dRe, dL/dIm).
The computation runs in float64 on the CPU whatever the tensors' dtype and
device; results are cast back. Only first derivatives exist (the backward is
the reference's hand-written one, not itself differentiable).
"""
import numpy as np
import torch
from torch.autograd.function import once_differentiable

import idattn

__all__ = ["LayerFunction", "InterdomainLayer", "layer"]


def _numpy(t):
    return t.detach().to("cpu", torch.float64).numpy()


class LayerFunction(torch.autograd.Function):
    """apply(settings, names, x, *params): y = layer(x); settings is a dict with 'variant', 'heads',
    'rope', 'rope_order', 'form', 'chunk', 'backward', 'checkpoint'; params in the order of names."""

    @staticmethod
    def forward(ctx, settings, names, x, *params):
        ctx.settings, ctx.names = settings, names
        ctx.save_for_backward(x, *params)
        p = {"heads": settings["heads"], **{n: _numpy(t) for n, t in zip(names, params)}}
        y = idattn.layer_forward(p, _numpy(x), settings["variant"], rope=settings["rope"],
                                 rope_order=settings["rope_order"], form=settings["form"], chunk=settings["chunk"])
        return torch.from_numpy(y).to(dtype=x.dtype, device=x.device)

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        x, *params = ctx.saved_tensors
        s, names = ctx.settings, ctx.names
        p = {"heads": s["heads"], **{n: _numpy(t) for n, t in zip(names, params)}}
        g = idattn.layer_backward(p, _numpy(x), _numpy(dy), s["variant"], rope=s["rope"],
                                  rope_order=s["rope_order"], backward=s["backward"], checkpoint=s["checkpoint"])
        grads = [torch.from_numpy(g["x"]).to(dtype=x.dtype, device=x.device)]
        grads += [torch.from_numpy(g[n]).to(dtype=t.dtype, device=t.device) for n, t in zip(names, params)]
        return (None, None, *grads)


def layer(x, params, variant, rope=None, rope_order="before-xi", form="recurrence", chunk=16, backward="stored",
          checkpoint=16):
    """Functional form: params is a dict of tensors named as in chapter 5's contract plus 'heads' (int)."""
    names = sorted(n for n in params if n != "heads")
    settings = dict(variant=variant, heads=int(params["heads"]), rope=rope, rope_order=rope_order, form=form,
                    chunk=chunk, backward=backward, checkpoint=checkpoint)
    return LayerFunction.apply(settings, names, x, *[params[n] for n in names])


class InterdomainLayer(torch.nn.Module):
    """The learned layer of chapter 5 (any cell of the ablation cube, or the softmax baseline) as a module.
    Its parameters are named exactly as in chapter 5's contract (W_q, conv_k, log_dt, B, C, ...), initialised
    by the reference's layer-init (eq:5.init) with `seed`, or taken from `params` (a dict as written by
    layer-init or idattn.layer_init)."""

    def __init__(self, variant, D=None, H=None, R=None, d=None, M=None, seed=0, gate=False, rope=None,
                 rope_order="before-xi", form="recurrence", chunk=16, backward="stored", checkpoint=16,
                 params=None, dtype=torch.float64):
        super().__init__()
        if params is None:
            params = idattn.layer_init(variant, D, H, R, d, M, seed=seed, gate=gate, rope=rope)
        self.variant, self.heads = variant, int(params["heads"])
        self.settings = dict(variant=variant, heads=self.heads, rope=rope, rope_order=rope_order, form=form,
                             chunk=chunk, backward=backward, checkpoint=checkpoint)
        self.names = sorted(n for n in params if n != "heads")
        for n in self.names:
            self.register_parameter(n, torch.nn.Parameter(torch.as_tensor(np.asarray(params[n]), dtype=dtype)))

    def forward(self, x):
        return LayerFunction.apply(self.settings, self.names, x, *[getattr(self, n) for n in self.names])

    def export_params(self):
        """The parameters as a dict of numpy arrays plus 'heads', the format of layer-init's .npz."""
        return {"heads": self.heads, **{n: _numpy(getattr(self, n)) for n in self.names}}
