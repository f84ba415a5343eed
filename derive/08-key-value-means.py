"""Chapter 8 in the main job: Key-Value Means.

Table rows: KVM with a budget of at least N against exact causal softmax (eq:8.window,
eq:8.readout), and chunked prefill against token-by-token decoding (eq:8.budget, eq:8.merge).
Figure: the causal relative error against softmax (P1) versus the floats a decoder keeps, for KVM
(fixed budgets; the window counted in its state), chapter 2's linear attention and chapter 4's S4D
attention, on the same LayerNormed inputs (logits with standard deviation about 1).
Also imported by notebooks/08-key-value-means.py.
"""
import matplotlib.pyplot as plt
import numpy as np

import idattn

TITLE = "Key-Value Means"


def rel(ref, x):
    return float(np.linalg.norm(x - ref) / np.linalg.norm(ref))


def error_vs_state(N=256, d=16, chunk=16, window_chunks=2, seed=0):
    """Relative error against causal softmax and the state each method keeps (floats), same inputs."""
    rng = np.random.default_rng(seed)
    # LayerNormed queries and keys, as in the paper's layer (logits q.k / sqrt(d) with std about 1), so
    # that LN_s of a state key is on the scale of the window's keys
    ln = lambda x: (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True)  # noqa: E731
    q, k = ln(rng.standard_normal((N, d))), ln(rng.standard_normal((N, d)))
    v = rng.standard_normal((N, d))
    exact = idattn.softmax_attention(q, k, v, causal=True)
    window = window_chunks * chunk
    kvm = "KVM, fixed budgets (window included)"
    res = {kvm: [], "linear attention (ch. 2)": [], "S4D attention (ch. 4, R_f = 16)": []}
    for rows in (chunk, 2 * chunk, 4 * chunk, 8 * chunk, N - window):
        y = idattn.kvm_attention(q, k, v, chunk=chunk, window_chunks=window_chunks, budget=f"fixed:{rows}")
        res[kvm].append(((rows + window) * 2 * d, rel(exact, y)))
    for rf in (8, 16, 32, 64, 128):
        w = idattn.draw_feature_weights("positive", rf, d, seed=1)
        res["linear attention (ch. 2)"].append((rf * (d + 1), rel(exact, idattn.linear_attention(q, k, v, "positive", w,
                                                                                             causal=True))))
    w16 = idattn.draw_feature_weights("positive", 16, d, seed=1)
    for M in (2, 4, 8, 16, 32):
        y = idattn.ssm_attention(q, k, v, "positive", w16, "s4d", "inv", M, 1.0 / N)
        res["S4D attention (ch. 4, R_f = 16)"].append((2 * M * (16 + d + 1), rel(exact, y)))
    return res


def plot_error_vs_state(ax, res, N, d):
    for name, pts in res.items():
        xs, ys = zip(*pts)
        ax.plot(xs, np.maximum(ys, 1e-16), "o-", ms=4, label=name)
    ax.axvline(N * 2 * d, color="grey", lw=0.6)
    ax.text(N * 2 * d * 1.03, 0.5, "softmax KV cache\nat N", fontsize=7, color="grey")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("floats a decoder keeps per head at the end")
    ax.set_ylabel("causal relative error vs softmax (P1)")
    ax.set_title(f"fixed-size states against softmax, N = {N}, d = {d}, LayerNormed q, k", fontsize=9)
    ax.legend(fontsize=7)


def run(ctx):
    rng = ctx.rng(81)
    N = 97
    q, k, v = (0.7 * rng.standard_normal((N, 8)) for _ in range(3))
    exact = idattn.softmax_attention(q, k, v, causal=True)
    ctx.row("8.readout", "KVM with budget >= N, LN_s off: vs exact causal softmax, N = 97, C = 5",
            idattn.compare(exact, idattn.kvm_attention(q, k, v, chunk=5, budget="fixed:128", state_norm=False),
                           tol=1e-12), "ref (float64)")
    g = rng.uniform(0.5, 2.0, N)
    for budget in ("fixed:8", "sqrt:2", "saturate:20"):
        a = idattn.kvm_attention(q, k, v, g, chunk=5, budget=budget, rope_dims=2)
        b = idattn.kvm_attention(q, k, v, g, chunk=5, budget=budget, rope_dims=2, form="decode")
        ctx.row("8.merge", f"KVM {budget}: chunked prefill vs token-by-token decode, every position",
                idattn.compare(a, b, tol=1e-12), "ref (float64)")
    ctx.skipped("8.readout", "fast KVM readout vs reference", "no CUDA kernel for chapter 8 yet")

    Nf = 128 if ctx.quick else 256
    res = error_vs_state(N=Nf)
    for name, pts in res.items():
        ctx.log(f"{name}: " + ", ".join(f"{s} floats {e:.3f}" for s, e in pts))
    fig, ax = plt.subplots(figsize=(6.5, 4.5), layout="constrained")
    plot_error_vs_state(ax, res, Nf, 16)
    ctx.figure(fig, "08-error-vs-state", "KVM, linear attention and S4D attention against causal softmax versus the "
               "floats each keeps (same inputs, logit std 1)")
    plt.close(fig)
