# %% [markdown]
# # Chapter 1 - Attention as kernel regression
#
# Companion to `chapters/01-softmax-attention.md`. We run the float64 reference of (P1)
# (`eq:P1`), look at the attention weights, check the online-softmax recurrence the fast
# kernel uses (`eq:1.online`), and measure float32 error against float64 (`eq:1.1`).
# The fast kernel runs only where a CUDA device exists; elsewhere its column says why not.

# %%
import importlib.util
import os
import pathlib

import matplotlib.pyplot as plt
import numpy as np

import idattn

# The repository root (set by scripts/run_notebook.py; else the folder above notebooks/).
ROOT = pathlib.Path(os.environ.get("IDATTN_SOURCE_DIR", pathlib.Path.cwd().parent))
spec = importlib.util.spec_from_file_location("ch1", ROOT / "derive" / "01-softmax-attention.py")
ch1 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ch1)
status = idattn.device_status()
print("fast backend:", status["detail"])

# %% [markdown]
# ## The estimator and its weights
# Each row of the weight matrix is a probability distribution over keys (`eq:P1`); the causal
# mask (`eq:1.causal`) zeroes everything right of the diagonal.

# %%
rng = np.random.default_rng(7)
q, k, v = (rng.standard_normal((48, 16)) for _ in range(3))
fig, axs = plt.subplots(1, 2, figsize=(10.5, 4.2), layout="constrained")
ch1.plot_attention_map(axs, 2 * q, 2 * k)
plt.show()
o = idattn.softmax_attention(q, k, v, causal=True)
assert np.allclose(o[0], v[0]), "first causal row must be v_0"
assert np.all((o >= v.min(axis=0) - 1e-12) & (o <= v.max(axis=0) + 1e-12)), "convex combination"

# %% [markdown]
# ## The online recurrence equals the direct form
# Block sizes 1, 7 and larger than N all give the same output to rounding (`eq:1.online`).

# %%
for block in (1, 7, 1000):
    c = idattn.compare(idattn.softmax_attention(q, k, v, causal=True),
                       idattn.softmax_attention_online(q, k, v, causal=True, block=block), tol=1e-12)
    print(f"block {block:5d}: {c['report']}")
    assert c["pass"]

# %% [markdown]
# ## Float32 error versus sequence length
# The pass rule for a fast kernel: its error against float64 is at most twice that of the
# same formula evaluated plainly in float32, plus four float32 ulps.

# %%
rows = ch1.error_vs_n(np.random.default_rng(3), [16, 64, 256, 1024], with_fast=status["available"])
print(f"{'N':>6} {'naive32':>10} {'fast':>10}")
for r in rows:
    print(f"{r['N']:6d} {r['naive32']:10.2e} {r.get('fast', float('nan')):10.2e}")
fig, ax = plt.subplots(figsize=(6, 4.2))
ch1.plot_error_vs_n(ax, rows)
plt.show()
assert all(r["naive32"] < 1e-5 for r in rows)
