"""Chapter 6 in the main job: decoding and cost.

Table rows: prefill then token-by-token decode against chapter 5's parallel forward at every
position (eq:6.step, eq:6.state), chunked prefill against unchunked (eq:6.prefill), the folded
readout against the explicit one (eq:6.cost), softmax decoding over a KV cache against chapter 5's
softmax variant (eq:6.cache). Figure: the time of one decode step and the size of the state versus
the prefix length (the shape of the paper's Figure 4), CPU reference, small shape.
Also imported by notebooks/06-decoding.py.
"""
import time

import matplotlib.pyplot as plt
import numpy as np

import idattn

TITLE = "Decoding and cost"


def decode_all(p, variant, x, prompt, chunk, readout="explicit"):
    """Prefill x[:prompt] in chunks, then decode the rest token by token: y (N, D)."""
    dec = idattn.Decoder(p, variant, readout=readout)
    out = [dec.prefill(x[:prompt], chunk)] + [dec.step(x[t])[None] for t in range(prompt, x.shape[0])]
    return np.concatenate(out), dec


def decode_cost(lengths, steps=41, D=32, H=2, R=16, d=16, M=16, seed=0):
    """Median time of one decode step (ms) and the state's size (floats) at each prefix length, for
    the full variant (explicit and folded readout) and softmax over a KV cache."""
    rng = np.random.default_rng(seed)
    res = {}
    for variant, readout, label in (("full", "explicit", "interdomain, explicit C"),
                                    ("full", "folded", "interdomain, folded G"),
                                    ("softmax", "explicit", "softmax, KV cache")):
        p = idattn.layer_init(variant, D, H, R, d, M, seed=seed)
        times, sizes = [], []
        for L in lengths:
            dec = idattn.Decoder(p, variant, readout=readout)
            dec.prefill(rng.standard_normal((L, D)), 256)
            sizes.append(dec.state_floats)
            x = rng.standard_normal(D)
            dec.step(x)  # warm-up
            ts = []
            for _ in range(steps):
                t0 = time.perf_counter()
                dec.step(x)
                ts.append(time.perf_counter() - t0)
            times.append(1e3 * float(np.median(ts)))
        res[label] = {"ms": times, "floats": sizes}
    return res


def plot_decode_cost(axes, lengths, res):
    for label, r in res.items():
        axes[0].plot(lengths, r["ms"], "o-", ms=4, label=label)
        axes[1].plot(lengths, r["floats"], "o-", ms=4, label=label)
    for ax, what in zip(axes, ("time of one decode step (ms, CPU reference)", "state size (floats, complex as 2)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("prefix length")
        ax.set_ylabel(what)
        ax.legend(fontsize=7)
    axes[0].set_title("decode step versus prefix (eq:6.step, eq:6.cache)", fontsize=9)
    axes[1].set_title("what a decoder keeps (eq:6.state)", fontsize=9)


def run(ctx):
    rng = ctx.rng(61)
    x = rng.standard_normal((23, 6))
    for variant in ("full", "s4d", "softmax"):
        p = idattn.layer_init(variant, 6, 2, 4, 3, 5, seed=3, gate=True)
        if "C" in p:  # away from C = I, where the explicit and folded readouts coincide trivially
            p["C"] = p["C"] + 0.3 * rng.standard_normal(p["C"].shape)
        y = idattn.layer_forward(p, x, variant)
        yd, _ = decode_all(p, variant, x, 6, 4)
        label = "6.cache" if variant == "softmax" else "6.step"
        ctx.row(label, f"{variant}: prefill 6 (chunks of 4) + 17 decode steps vs the parallel forward",
                idattn.compare(y, yd, tol=1e-12), "ref (float64)")
        if variant != "softmax":
            for K in (1, 5, 23, 40):
                dec = idattn.Decoder(p, variant)
                ctx.row("6.prefill", f"{variant}: prefill in chunks of {K} vs the parallel forward, N = 23",
                        idattn.compare(y, dec.prefill(x, K), tol=1e-12), "ref (float64)")
            yf, _ = decode_all(p, variant, x, 6, 4, readout="folded")
            ctx.row("6.cost", f"{variant}: folded readout G = C^H C vs explicit C X_t, every position",
                    idattn.compare(yd, yf, tol=1e-12), "ref (float64)")
    ctx.skipped("6.step", "fast fused decode step vs reference", "no CUDA kernel for chapter 6 yet")

    lengths = [64, 256, 1024] if ctx.quick else [64, 128, 256, 512, 1024, 2048, 4096]
    res = decode_cost(lengths)
    for label, r in res.items():
        ctx.log(f"{label}: ms per step {[round(t, 3) for t in r['ms']]}, ratio longest/shortest "
                f"{r['ms'][-1] / r['ms'][0]:.2f}; state floats {r['floats'][0]} -> {r['floats'][-1]}")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    plot_decode_cost(axes, lengths, res)
    ctx.figure(fig, "06-decode-cost", "one decode step's time and the state's size versus the prefix length: "
               "interdomain flat, softmax with a KV cache rising (CPU reference, H = 2, R = d = M = 16)")
    plt.close(fig)
