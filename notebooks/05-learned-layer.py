# %% [markdown]
# # Chapter 5 - The learned relaxation
#
# Companion to `chapters/05-learned-layer.md`. The layer the paper trains relaxes each step of
# chapters 2-4: a learned SiLU feature map with a short convolution and RoPE (`eq:P10`,
# `eq:5.conv`, `eq:5.rope`), input RMSNorm + bias (`eq:P12`), the S4D recurrence with learned
# `Delta, A, B` (`eq:5.ssm`), a learned full readout `C` (`eq:5.C`) and no denominator (`eq:P13`).
# Here: the layer against a literal numpy transcription, its three forward forms (`eq:5.fold`,
# `eq:5.1`), the hand-written backward against finite differences (`eq:5.adjoint`), the paper's
# Lambda-division memory trick and its error (`eq:5.lambda-div`, `eq:5.lambda-err`), and what the
# learned layer reaches when fitted to a softmax layer, versus state size.

# %%
import importlib.util
import os
import pathlib

import matplotlib.pyplot as plt
import numpy as np

import idattn

ROOT = pathlib.Path(os.environ.get("IDATTN_SOURCE_DIR", pathlib.Path.cwd().parent))
spec = importlib.util.spec_from_file_location("ch5", ROOT / "derive" / "05-learned-layer.py")
ch5 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ch5)

# %% [markdown]
# ## The layer is what chapter 5 says
# The full variant (Figure 3a, gate on) from the C++ reference against every step written out in
# numpy; the folded readout `G = C^H C` (`eq:5.fold`) and the chunkwise two-pass form (`eq:5.1`)
# against the recurrence.

# %%
p = ch5.perturbed("full", 1)
x = np.random.default_rng(2).standard_normal((2, 17, 6))
y = idattn.layer_forward(p, x, "full")
print("eq:5.ssm vs numpy:", idattn.compare(np.stack([ch5.numpy_full_layer(p, xx) for xx in x]), y, tol=1e-12)["report"])
for form, chunk in (("folded", 16), ("chunked", 5)):
    cmp = idattn.compare(y, idattn.layer_forward(p, x, "full", form=form, chunk=chunk), tol=1e-13)
    print(f"{form} vs recurrence:", cmp["report"])
    assert cmp["pass"]

# %% [markdown]
# ## The backward against central differences: the V of truncation and round-off
# One random direction per parameter group; the error falls as `h^2` until round-off `u |L| / h`
# takes over near `h = 1e-5`.

# %%
steps = np.logspace(-1, -12, 23)
errs = ch5.gradient_check_errors(steps)
fig, ax = plt.subplots(figsize=(6, 4.5), layout="constrained")
ch5.plot_gradient_check(ax, steps, errs)
plt.show()
assert max(e[np.argmin(np.abs(steps - 1e-5))] for e in errs.values()) < 1e-7

# %% [markdown]
# ## Recovering states by dividing by Lambda (`eq:5.lambda-div`)
# Every division multiplies the carried error by `1/|Lambda|`; checkpoints every `K` tokens bound
# it (`eq:5.lambda-err`). With `K = 1` the backward is exact, with `|Lambda|` near 1 any `K` is
# harmless, and a fast-forgetting mode with a long segment loses every digit.

# %%
rhos = np.logspace(-3, np.log10(0.95), 9)
Ks = [1, 2, 4, 8, 16]
lerr = ch5.lambda_division_errors(rhos, Ks)
fig, ax = plt.subplots(figsize=(6, 4.5), layout="constrained")
ch5.plot_lambda_division(ax, rhos, Ks, lerr)
plt.show()
assert lerr[0].max() == 0.0 and lerr[1].max() < 1e-12

# %% [markdown]
# ## The learned relaxation versus state size
# The learned layer (Adam, from `layer-init`) fitted to a fixed causal softmax layer, next to the
# fixed approximations of chapters 2-4 of the same softmax attention and the prefix mean. Read the
# held-out curves too: see the chapter, section 5.5.

# %%
res = ch5.relaxation_experiment([1, 2, 4], [0, 1], steps=60, variants=("full", "s4d"))
fig, ax = plt.subplots(figsize=(7, 5), layout="constrained")
ch5.plot_relaxation(ax, res)
plt.show()
