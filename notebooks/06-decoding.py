# %% [markdown]
# # Chapter 6 - Decoding and cost
#
# Companion to `chapters/06-decoding.md`. A decoder keeps a state between tokens (`eq:6.state`):
# fixed in size for the interdomain layer, a growing KV cache for softmax (`eq:6.cache`). A decode
# step is chapter 5's layer for one token from that state (`eq:6.step`), a prefill is runs of `K`
# tokens (`eq:6.prefill`), and both equal the parallel forward at every position.

# %%
import importlib.util
import os
import pathlib

import matplotlib.pyplot as plt
import numpy as np

import idattn

ROOT = pathlib.Path(os.environ.get("IDATTN_SOURCE_DIR", pathlib.Path.cwd().parent))
spec = importlib.util.spec_from_file_location("ch6", ROOT / "derive" / "06-decoding.py")
ch6 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ch6)

# %% [markdown]
# ## Decoding equals the parallel forward
# Prefill 6 tokens in chunks of 4, then decode 17 tokens one at a time, for every variant.

# %%
x = np.random.default_rng(1).standard_normal((23, 6))
for variant in ("full", "norope", "dualkv", "single", "s4d", "softmax"):
    p = idattn.layer_init(variant, 6, 2, 4, 3, 5, seed=3, gate=True)
    y = idattn.layer_forward(p, x, variant)
    yd, dec = ch6.decode_all(p, variant, x, 6, 4)
    cmp = idattn.compare(y, yd, tol=1e-12)
    print(f"{variant:8s} decode vs forward: {cmp['report']}; state {dec.state_floats} floats")
    assert cmp["pass"]

# %% [markdown]
# ## Flat versus rising
# The time of one decode step and the state's size versus the prefix length (the shape of the
# paper's Figure 4), on the CPU reference at a small shape.

# %%
lengths = [64, 256, 1024]
res = ch6.decode_cost(lengths)
fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
ch6.plot_decode_cost(axes, lengths, res)
plt.show()
assert res["interdomain, folded G"]["floats"][0] == res["interdomain, folded G"]["floats"][-1]
assert res["softmax, KV cache"]["floats"][-1] == 16 * res["softmax, KV cache"]["floats"][0]
