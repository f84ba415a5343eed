"""Chapter 1 in the main job: softmax attention (P1), its online form, the fast kernel.

Also imported by notebooks/01-softmax-attention.py for the same figures.
"""
import matplotlib.pyplot as plt
import numpy as np

import idattn

TITLE = "Attention as kernel regression (P1)"


def literal_p1(q, k, v, causal):
    """eq:P1 in numpy float64, written independently of the C++ reference (row max shifted)."""
    s = q @ k.T / np.sqrt(q.shape[1])
    if causal:
        n, nq = k.shape[0], q.shape[0]
        s = np.where(np.arange(n)[None, :] <= np.arange(nq)[:, None] + (n - nq), s, -np.inf)
    w = np.exp(s - s.max(axis=1, keepdims=True))
    return (w @ v) / w.sum(axis=1, keepdims=True)


def attention_weights(q, k, causal):
    """The N_q x N weight matrix of (P1), for drawing only."""
    e = np.eye(k.shape[0])
    return literal_p1(q, k, e, causal)  # values = identity: o_i = the weights of row i


def error_vs_n(ctx_rng, ns, d=64, heads=2, with_fast=False):
    """Relative RMS error of naive32 (and fast) against the float64 reference versus N."""
    rows = []
    for n in ns:
        q, k, v = (ctx_rng.standard_normal((1, heads, n, d)).astype(np.float32) for _ in range(3))
        ref = idattn.softmax_attention(q, k, v, causal=True)
        naive = idattn.softmax_attention(q, k, v, causal=True, impl="naive32")
        row = {"N": n, "naive32": idattn.compare(ref, naive, tol=1.0)["rel_rms"]}
        if with_fast:
            fast = idattn.softmax_attention(q, k, v, causal=True, impl="fast")
            row["fast"] = idattn.compare(ref, fast, baseline=naive)["rel_rms"]
        rows.append(row)
    return rows


def plot_error_vs_n(ax, rows):
    ns = [r["N"] for r in rows]
    ax.loglog(ns, [r["naive32"] for r in rows], "o-", label="naive float32 (reference formula)")
    if "fast" in rows[0]:
        ax.loglog(ns, [r["fast"] for r in rows], "s-", label="fast CUDA kernel (float32)")
    ax.axhline(np.finfo(np.float32).eps, color="gray", ls=":", label="float32 epsilon")
    ax.set_xlabel("sequence length N")
    ax.set_ylabel("relative RMS error vs float64")
    ax.set_title("Causal softmax attention, d = 64")
    ax.legend()


def plot_attention_map(axs, q, k):
    for ax, causal in zip(axs, (False, True)):
        im = ax.imshow(attention_weights(q, k, causal), cmap="viridis")
        ax.set_title(("causal" if causal else "bidirectional") + " weights w_in (eq:P1)")
        ax.set_xlabel("key n")
        ax.set_ylabel("query i")
        plt.colorbar(im, ax=ax, fraction=0.046)


def run(ctx):
    rng = ctx.rng(1)
    n, d = (97, 64) if ctx.quick else (1025, 64)

    # eq:P1: the C++ reference against an independent numpy evaluation.
    q, k, v = (rng.standard_normal((n, d)) for _ in range(3))
    for causal in (False, True):
        ref = idattn.softmax_attention(q, k, v, causal=causal)
        ctx.row("P1", f"C++ reference vs numpy, N={n}, causal={causal}",
                idattn.compare(literal_p1(q, k, v, causal), ref, tol=1e-12), "ref (float64)")
    # eq:1.online: the recurrence the kernel runs, in float64, against the direct form.
    for block in (1, 64, 2 * n):
        ctx.row("1.online", f"online recurrence, block {block}",
                idattn.compare(idattn.softmax_attention(q, k, v, causal=True),
                               idattn.softmax_attention_online(q, k, v, causal=True, block=block), tol=1e-12),
                "ref (float64)")
    # eq:1.shift / eq:1.3: logits around 1e3.
    big_q, big_k = 16 * q, 16 * k
    ref = idattn.softmax_attention(big_q, big_k, v, causal=True)
    ctx.row("1.3", "huge logits: reference finite (vs online)",
            idattn.compare(ref, idattn.softmax_attention_online(big_q, big_k, v, causal=True), tol=1e-12),
            "ref (float64)")
    # eq:1.1 / eq:1.2 / eq:1.3: the fast kernel by the tolerance rule.
    cases = [("1.1", "fast vs ref, non-causal", 1.0, False), ("1.2", "fast vs ref, causal", 1.0, True),
             ("1.3", "fast vs ref, huge logits", 16.0, True)]
    for label, what, scale, causal in cases:
        q32, k32, v32 = ((scale if i < 2 else 1.0) * rng.standard_normal((2, 4, n, d)).astype(np.float32)
                         for i in range(3))
        if not ctx.has_device:
            ctx.skipped(label, what, ctx.device)
            continue
        ref = idattn.softmax_attention(q32, k32, v32, causal=causal)
        naive = idattn.softmax_attention(q32, k32, v32, causal=causal, impl="naive32")
        fast = idattn.softmax_attention(q32, k32, v32, causal=causal, impl="fast")
        ctx.row(label, what + f", B=2 H=4 N={n} d={d}", idattn.compare(ref, fast, baseline=naive), "fast (CUDA)")

    # Figures: attention maps, and float32 error versus N.
    qs, ks = rng.standard_normal((48, 16)), rng.standard_normal((48, 16))
    fig, axs = plt.subplots(1, 2, figsize=(10.5, 4.2), layout="constrained")
    plot_attention_map(axs, 2 * qs, 2 * ks)
    ctx.figure(fig, "01-attention-map", "attention weights of (P1), bidirectional and causal")
    plt.close(fig)
    ns = [16, 64, 256] if ctx.quick else [16, 64, 256, 1024, 2048]
    rows = error_vs_n(ctx.rng(2), ns, with_fast=ctx.has_device)
    for r in rows:
        ctx.log(f"N={r['N']:5d}: naive32 rel. error {r['naive32']:.2e}" +
                (f", fast {r['fast']:.2e}" if "fast" in r else ""))
    fig, ax = plt.subplots(figsize=(6, 4.2))
    plot_error_vs_n(ax, rows)
    ctx.figure(fig, "01-error-vs-N", "float32 error of softmax attention against float64 versus N")
    plt.close(fig)
