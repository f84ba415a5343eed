# %% [markdown]
# # Chapter 8 - Key-Value Means
#
# Companion to `chapters/08-key-value-means.md`. KVM attends with softmax to [state rows; a block
# window] (`eq:8.readout`); the tokens leaving the window are appended to or merged into the rows
# (`eq:8.append`, `eq:8.merge`) under a budget (`eq:8.budget`).

# %%
import importlib.util
import os
import pathlib

import matplotlib.pyplot as plt
import numpy as np

import idattn

ROOT = pathlib.Path(os.environ.get("IDATTN_SOURCE_DIR", pathlib.Path.cwd().parent))
spec = importlib.util.spec_from_file_location("ch8", ROOT / "derive" / "08-key-value-means.py")
ch8 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ch8)

# %% [markdown]
# ## Nothing merged: exact softmax
# With a budget of at least `N` every token keeps a row of its own; with the state norm off the rows
# read back their tokens exactly.

# %%
rng = np.random.default_rng(0)
q, k, v = (0.7 * rng.standard_normal((60, 8)) for _ in range(3))
exact = idattn.softmax_attention(q, k, v, causal=True)
y = idattn.kvm_attention(q, k, v, chunk=4, budget="fixed:64", state_norm=False)
print("KVM vs softmax:", idattn.compare(exact, y, tol=1e-12)["report"])
assert idattn.compare(exact, y, tol=1e-12)["pass"]

# %% [markdown]
# ## Error versus the state a decoder keeps

# %%
res = ch8.error_vs_state(N=128)
fig, ax = plt.subplots(figsize=(6.5, 4.5), layout="constrained")
ch8.plot_error_vs_state(ax, res, 128, 16)
plt.show()
kvm = res["KVM, fixed budgets (window included)"]
assert kvm[-1][1] < 1e-4  # the largest budget keeps every token: exact up to LN_s's epsilon
