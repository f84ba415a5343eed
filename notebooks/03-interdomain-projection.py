# %% [markdown]
# # Chapter 3 - The interdomain projection
#
# Companion to `chapters/03-interdomain-projection.md`. Keys and values become functions of
# time; we project key features, values and the constant 1 onto `M` basis functions (`eq:P6`),
# read every query against the `M` states (`eq:P8`, `eq:P9`), and watch when this equals linear
# attention (P4) exactly (`eq:3.2`, `eq:3.3`, `eq:3.5`) and how far it is otherwise. The bases:
# scaled Legendre (HiPPO-LegS, `eq:3.legs`, exact interval integrals `eq:3.1`), discrete Legendre
# (Gram) polynomials (`eq:3.gram`) and DCT-II (`eq:3.dct`).

# %%
import importlib.util
import os
import pathlib

import matplotlib.pyplot as plt
import numpy as np

import idattn

ROOT = pathlib.Path(os.environ.get("IDATTN_SOURCE_DIR", pathlib.Path.cwd().parent))
spec = importlib.util.spec_from_file_location("ch3", ROOT / "derive" / "03-interdomain-projection.py")
ch3 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ch3)

# %% [markdown]
# ## The bases on the token axis
# Every basis is used through its projection matrix `Phi` (M, N): row `m` is what basis
# function `m` contributes to each token. For LegS these are the integrals of the scaled
# Legendre functions over the tokens' unit intervals (`eq:3.1`), equal to numpy quadrature.

# %%
N, M = 64, 5
fig, axs = plt.subplots(1, 3, figsize=(12, 3), layout="constrained")
for ax, b in zip(axs, ch3.BASES):
    phi = idattn.basis_matrix(b, M, N)
    for m in range(M):
        ax.plot(phi[m], label=f"m = {m}")
    ax.set_title(f"{b}: rows of Phi (M = {M}, N = {N})", fontsize=9)
    ax.set_xlabel("token n")
axs[0].legend(fontsize=7)
plt.show()
c = idattn.compare(ch3.legs_by_quadrature(M, N), idattn.basis_matrix("legs", M, N), tol=1e-12)
print("eq:3.1 closed form vs quadrature:", c["report"])
assert c["pass"]
for b in ("gram", "dct"):
    phi = idattn.basis_matrix(b, N, N)
    assert np.abs(phi @ phi.T - np.eye(N)).max() < 1e-12, b

# %% [markdown]
# ## Exact cases
# Key features inside the span give (P4) for any values (`eq:3.2`); a complete discrete basis,
# `M = N`, gives (P4) by Parseval (`eq:3.3`); so does the full DFT with the Hermitian readout
# (`eq:3.5`). The denominator is exact for every `M` (`eq:3.eta`).

# %%
rng = np.random.default_rng(3)
d, R, n = 16, 32, 48
q, k = (0.5 * rng.standard_normal((n, d)) for _ in range(2))
v = rng.standard_normal((n, d))
w = idattn.draw_feature_weights("positive", R, d, seed=1)
fq, fk = idattn.feature_map(q, "positive", w), idattn.feature_map(k, "positive", w)
p4 = ch3.literal_p4(fq, fk, v)
phi = idattn.basis_matrix("gram", 6, n)
fk_span = phi.T @ (phi @ fk)
checks = {
    "3.2 keys in span (gram, M=6)": (ch3.literal_p4(fq, fk_span, v),
                                     idattn.interdomain_attention_features(fq, fk_span, v, "gram", 6)),
    "3.3 dct, M = N": (p4, idattn.interdomain_attention_features(fq, fk, v, "dct", n)),
    "3.5 fourier, M = N": (p4, idattn.interdomain_attention_features(fq, fk, v, "fourier", n)),
    "3.eta legs, M = 3": ((fq @ fk.T).sum(1),
                          (lambda u, g, e: (fq @ u.T) @ e)(*idattn.interdomain_project(fk, v, "legs", 3))),
}
for name, (want, got) in checks.items():
    c = idattn.compare(want, got, tol=1e-12)
    print(f"{name:32s} {c['report']}")
    assert c["pass"]

# %% [markdown]
# ## Error against (P4) versus M
# White keys (every token independent) leave nothing for a few smooth functions to capture;
# smooth keys are captured quickly, and at moderate `M` the projection error drops below the
# feature-map error of chapter 2 (the dashed line: (P4) against softmax (P1) at the same `R`).

# %%
res = ch3.error_vs_m(np.random.default_rng(32), [1, 2, 4, 8, 16, 32, 64], seeds=2, n=64, d=d, R=64)
fig, axs = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained", sharey=True)
ch3.plot_error_vs_m(axs, res)
plt.show()
sm = res["kinds"]["smooth"]["err"]
assert np.median(sm["gram"][-1]) < 1e-12 and np.median(sm["dct"][-1]) < 1e-12  # M = N: Parseval
assert np.median(sm["legs"][4]) < np.median(sm["legs"][0]) / 10

# %% [markdown]
# ## The effective attention matrix
# (P9) is kernel attention with the (P4) weights passed through the projection kernel
# `P = Phi^T Phi` (`eq:3.4`): a low-pass smoothing along the token axis. At small `M` the
# smoothed weights can be negative (blue).

# %%
mats = ch3.effective_matrices(np.random.default_rng(33), [2, 8, 32], n=48)
fig, axs = plt.subplots(1, len(mats), figsize=(3.2 * len(mats), 3.4), layout="constrained")
im = ch3.plot_effective(axs, mats)
fig.colorbar(im, ax=axs, shrink=0.8)
plt.show()
