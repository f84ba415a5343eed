# %% [markdown]
# # Chapter 4 - The SSM basis recurrence
#
# Companion to `chapters/04-ssm-basis-recurrence.md`. HiPPO-LegS (`eq:P2`) keeps chapter 3's
# projection online: the exact update in `tau = log t` (`eq:4.1`) reproduces chapter 3's
# coefficients for every `t`, and Euler / bilinear (`eq:4.2`) converge to it with orders 1 and 2.
# S4D (`eq:P11`) replaces it with a diagonal complex recurrence whose impulse response is the
# basis (`eq:4.psi`); its states can be computed four ways (`eq:4.3`, `eq:4.4`, `eq:4.5`), and the
# damped Fourier basis makes interdomain attention exactly decayed linear attention (`eq:4.6`).

# %%
import importlib.util
import os
import pathlib

import matplotlib.pyplot as plt
import numpy as np

import idattn

ROOT = pathlib.Path(os.environ.get("IDATTN_SOURCE_DIR", pathlib.Path.cwd().parent))
spec = importlib.util.spec_from_file_location("ch4", ROOT / "derive" / "04-ssm-basis-recurrence.py")
ch4 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ch4)

# %% [markdown]
# ## LegS: the exact update is chapter 3's projection
# `sqrt(t) c(t)` (`eq:4.scale`) from the exact recurrence equals chapter 3's closed-form projection
# of the prefix `[0, t]` for every `t`.

# %%
rng = np.random.default_rng(4)
z = rng.standard_normal((40, 2))
c = idattn.legs_states(z, 8)
t = np.arange(1, 41)[:, None, None]
cmp = idattn.compare(ch4.legs_projection_every_t(8, z), np.sqrt(t) * c, tol=1e-12)
print("eq:4.1 vs chapter 3:", cmp["report"])
assert cmp["pass"]

# %% [markdown]
# ## Euler and bilinear converge with orders 1 and 2 (`eq:4.2`)

# %%
substeps = [1, 2, 4, 8, 16, 32, 64]
errs = ch4.legs_approx_errors(substeps, M=8, n=32)
fig, ax = plt.subplots(figsize=(5.5, 4.2), layout="constrained")
ch4.plot_legs_orders(ax, substeps, errs)
plt.show()
assert -1.3 < ch4.fitted_order(substeps, errs["euler"]) < -0.8
assert -2.3 < ch4.fitted_order(substeps, errs["bilinear"]) < -1.7

# %% [markdown]
# ## S4D: the basis is the impulse response, and four forms give the same states
# `psi_m(tau) = Lambda_m^tau Bbar_m` are damped complex exponentials; the recurrence, the explicit
# projection, the FFT convolution and the chunked scan agree to rounding.

# %%
psi = idattn.ssm_impulse_response(128, "s4d", "lin", 4, 1 / 32)
fig, ax = plt.subplots(figsize=(7, 3), layout="constrained")
for m in range(4):
    ax.plot(psi[:, m].real, label=f"Re psi_{m}")
ax.set_xlabel("lag tau (tokens)")
ax.legend(fontsize=7)
plt.show()
z = rng.standard_normal((97, 3))
x = idattn.ssm_states(z, "s4d", "inv", 16, 0.05)
for form in ch4.FORMS:
    y = idattn.ssm_states(z, "s4d", "inv", 16, 0.05, form=form, chunk=10)
    print(f"{form:9s} max rel diff {ch4.max_rel(x, y):.1e}")
    assert ch4.max_rel(x, y) < 1e-12

# %% [markdown]
# ## How many S4D modes reproduce the LegS functions?
# A least-squares readout over `M` impulse responses fitted to the first LegS functions of chapter
# 3 on a window (`Delta = 1 / window`).

# %%
ms = [1, 2, 4, 8, 16, 32]
fits = ch4.basis_fit_errors(ms, 64, 6)
fig, ax = plt.subplots(figsize=(5.5, 4.2), layout="constrained")
ch4.plot_basis_fit(ax, ms, fits, 64, 6)
plt.show()
assert fits["lin"][-1] < 1e-6 and fits["inv"][-1] < 1e-6

# %% [markdown]
# ## Attention over an S4D basis versus the state size
# Causal interdomain attention read from the S4D states (`eq:4.readout`) against chapter 3's exact
# LegS attention and against softmax.

# %%
res = ch4.attention_error_vs_m(np.random.default_rng(42), [2, 4, 8, 16, 32], seeds=1, n=48)
fig, ax = plt.subplots(figsize=(6, 4.4), layout="constrained")
ch4.plot_attention_error(ax, res)
plt.show()

# %% [markdown]
# ## The damped Fourier basis: exact below `L`, aliasing beyond
# Below `L` the attention is exactly decayed linear attention (`eq:4.6`); beyond `L` lags `L` apart
# alias, damped by `exp(-alpha L)` (`eq:4.alias`).

# %%
fr = ch4.fourier_errors(np.random.default_rng(43), [0.0, 0.05, 0.1, 0.2, 0.3, 0.5], L=32, n=96)
fig, ax = plt.subplots(figsize=(5.5, 4.2), layout="constrained")
ch4.plot_fourier(ax, fr)
plt.show()
assert fr["below"].max() < 1e-12
assert fr["beyond"][-1] < fr["beyond"][0] / 100
