# %% [markdown]
# # Chapter 2 - The kernel feature map
#
# Companion to `chapters/02-kernel-feature-map.md`. We build the four feature maps of the
# softmax kernel (random Fourier `eq:2.1`, positive `eq:2.2`, orthogonal `eq:2.3`, Taylor
# `eq:2.4`), check that (P3) `eq:P3` holds on average and exactly for Taylor, watch the
# Fourier denominator of (P4) `eq:P4` cross zero, and run linear attention in its three equal
# forms (`eq:2.5`). The fast kernels of this chapter are not written yet.

# %%
import importlib.util
import os
import pathlib

import matplotlib.pyplot as plt
import numpy as np

import idattn

ROOT = pathlib.Path(os.environ.get("IDATTN_SOURCE_DIR", pathlib.Path.cwd().parent))
spec = importlib.util.spec_from_file_location("ch2", ROOT / "derive" / "02-kernel-feature-map.py")
ch2 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ch2)

# %% [markdown]
# ## Feature maps on a shared draw
# Every random map is a function of its input and a draw `W` (R, d); the draw is an ordinary
# array, so the same frequencies can be handed to any implementation.

# %%
rng = np.random.default_rng(7)
d = 16
q, k, v = (0.5 * rng.standard_normal((40, d)) for _ in range(3))
for kind in ("rff", "positive", "orthogonal"):
    w = idattn.draw_feature_weights(kind, 32, d, seed=1)
    f = idattn.feature_map(q, kind, w)
    lit = ch2.literal_features(q, w, "rff" if kind == "rff" else "positive")
    print(f"{kind:11s} W {w.shape}, features {f.shape}, max |C++ - numpy| {np.abs(f - lit).max():.1e}")
    assert np.allclose(f, lit, rtol=1e-12, atol=0)
    if kind != "rff":
        assert (f > 0).all(), "positive features are positive"
ft_q, ft_k = idattn.feature_map(q, "taylor"), idattn.feature_map(k, "taylor")
t = q @ k.T / np.sqrt(d)
assert np.allclose(ft_q @ ft_k.T, 1 + t + t * t / 2, rtol=1e-12), "eq:2.4 is exact"

# %% [markdown]
# ## The denominator of (P4) with random Fourier features
# With few frequencies the estimated kernel values can be negative and a causal row's
# denominator can reach zero; positive features on the same inputs never do.

# %%
found = None
for trial in range(200):
    qq, kk = rng.standard_normal((16, d)), rng.standard_normal((16, d))
    w = idattn.draw_feature_weights("rff", 2, d, seed=trial)
    den_rff = np.cumsum(idattn.feature_map(qq, "rff", w) @ idattn.feature_map(kk, "rff", w).T, axis=1).diagonal()
    den_pos = np.cumsum(idattn.feature_map(qq, "positive", w) @ idattn.feature_map(kk, "positive", w).T,
                        axis=1).diagonal()
    assert (den_pos > 0).all()
    if (den_rff <= 0).any():
        found = (trial, int(np.argmax(den_rff <= 0)), den_rff.min())
        break
print("trial, row, rff denominator:", found)
assert found is not None

# %% [markdown]
# ## Linear attention three ways
# Quadratic, recurrent and chunked forms agree to rounding for every chunk size.

# %%
w = idattn.draw_feature_weights("orthogonal", 64, d, seed=3)
o_quad = idattn.linear_attention(q, k, v, "orthogonal", w, form="quadratic", causal=True)
for form, chunk in (("recurrent", 1), ("chunked", 1), ("chunked", 7), ("chunked", 1000)):
    c = idattn.compare(o_quad, idattn.linear_attention(q, k, v, "orthogonal", w, form=form, causal=True,
                                                       chunk=chunk), tol=1e-12)
    print(f"{form:9s} chunk {chunk:4d}: {c['report']}")
    assert c["pass"]

# %% [markdown]
# ## Error against softmax attention versus R
# The Monte Carlo error of the kernel matrix (`eq:P3`) and of the attention output against
# (P1) falls like `R^(-1/2)`; Taylor features (a star) have no Monte Carlo error, only the
# truncation error of `exp`.

# %%
res = ch2.error_vs_r(np.random.default_rng(22), [4, 16, 64, 256], seeds=4, n=48, d=d)
print("kernel slopes:", {kk: round(s, 3) for kk, s in ch2.slopes(res, "kernel").items()})
fig, axs = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
ch2.plot_error_vs_r(axs, res)
plt.show()
fig, axs = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
ch2.plot_error_vs_r(axs, res, state_size=True)
plt.show()
assert -0.75 < ch2.slopes(res, "kernel")["rff"] < -0.25
