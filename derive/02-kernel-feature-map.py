"""Chapter 2 in the main job: feature maps (P3)-(P5), linear attention (P4) in three forms.

Table rows for the deterministic identities; figures of the Monte Carlo error of the
kernel matrix and of the attention output against softmax attention (P1) versus R.
Also imported by notebooks/02-kernel-feature-map.py for the same figures.
"""
import matplotlib.pyplot as plt
import numpy as np

import idattn

TITLE = "The kernel feature map (P3)-(P5) and linear attention (P4)"
RANDOM_MAPS = ("rff", "positive", "orthogonal")


def literal_features(x, w, kind):
    """eq:2.1 / eq:2.2 in numpy, independently of the C++ reference."""
    s = np.sqrt(x.shape[1])
    xt = x / np.sqrt(s)
    if kind == "rff":
        mag = np.exp((x * x).sum(1, keepdims=True) / (2 * s)) / np.sqrt(w.shape[0])
        a = xt @ w.T
        return np.concatenate([mag * np.cos(a), mag * np.sin(a)], axis=1)
    return np.exp(xt @ w.T - (xt * xt).sum(1, keepdims=True) / 2) / np.sqrt(w.shape[0])


def literal_p4(fq, fk, v, causal):
    """eq:P4 in numpy: masked F_q F_k^T, row-normalised."""
    a = fq @ fk.T
    if causal:
        n, nq = fk.shape[0], fq.shape[0]
        a = np.where(np.arange(n)[None, :] <= np.arange(nq)[:, None] + (n - nq), a, 0.0)
    return (a @ v) / a.sum(1, keepdims=True)


def softmax_causal(q, k, v):
    return idattn.softmax_attention(q, k, v, causal=True)


def error_vs_r(rng, rs, seeds, n=64, d=16, scale=0.5):
    """Relative Frobenius error of F_q F_k^T against exp(QK^T/sqrt d), and relative RMS error of
    causal linear attention against softmax attention (P1), per map, R and seed."""
    q, k, v = (scale * rng.standard_normal((n, d)) for _ in range(3))
    v = v / scale
    kern = np.exp(q @ k.T / np.sqrt(d))
    o_ref = softmax_causal(q, k, v)
    out = {"d": d, "n": n, "rs": list(rs), "maps": {}}
    for kind in RANDOM_MAPS:
        ker = np.zeros((len(rs), seeds))
        att = np.zeros((len(rs), seeds))
        for a, r in enumerate(rs):
            for t in range(seeds):
                w = idattn.draw_feature_weights(kind, r, d, seed=1000 * r + t)
                fq, fk = idattn.feature_map(q, kind, w), idattn.feature_map(k, kind, w)
                ker[a, t] = np.linalg.norm(fq @ fk.T - kern) / np.linalg.norm(kern)
                o = idattn.linear_attention(q, k, v, kind, w, form="chunked", causal=True, chunk=16)
                att[a, t] = np.linalg.norm(o - o_ref) / np.linalg.norm(o_ref)
        out["maps"][kind] = {"kernel": ker, "attention": att, "rf": [2 * r if kind == "rff" else r for r in rs]}
    fq, fk = idattn.feature_map(q, "taylor"), idattn.feature_map(k, "taylor")
    o = idattn.linear_attention(q, k, v, "taylor", form="chunked", causal=True, chunk=16)
    out["taylor"] = {"kernel": np.linalg.norm(fq @ fk.T - kern) / np.linalg.norm(kern),
                     "attention": np.linalg.norm(o - o_ref) / np.linalg.norm(o_ref), "rf": fq.shape[1]}
    return out


def slopes(res, which="kernel"):
    """Least-squares log-log slope of the median error against R, per random map."""
    x = np.log(res["rs"])
    return {kind: float(np.polyfit(x, np.log(np.median(m[which], axis=1)), 1)[0]) for kind, m in res["maps"].items()}


def plot_error_vs_r(axs, res, state_size=False):
    """Left: kernel-matrix error; right: attention-output error. Median over seeds, band = min..max."""
    d = res["d"]
    for ax, which, title in zip(axs, ("kernel", "attention"),
                                ("kernel matrix F_q F_k^T vs exp(QK^T/sqrt d) (eq:P3)",
                                 "causal linear attention (eq:P4) vs softmax (eq:P1)")):
        for kind, m in res["maps"].items():
            x = np.array(m["rf"]) * (d + 1) if state_size else np.array(res["rs"])
            med = np.median(m[which], axis=1)
            ax.loglog(x, med, "o-", label=kind)
            ax.fill_between(x, m[which].min(axis=1), m[which].max(axis=1), alpha=0.2)
        tx = res["taylor"]["rf"] * (d + 1) if state_size else res["taylor"]["rf"]
        ax.loglog([tx], [res["taylor"][which]], "k*", ms=12, label=f"taylor (deterministic, R_f={res['taylor']['rf']})")
        x0 = np.array(res["rs"], float) * ((2 * (d + 1)) if state_size else 1)
        ref = np.median(res["maps"]["positive"][which], axis=1)[0]
        ax.loglog(x0, ref * (x0 / x0[0]) ** -0.5, "k--", lw=1, label="R^(-1/2) slope")
        ax.set_xlabel("state size R_f (d + 1)" if state_size else "random frequencies R")
        ax.set_ylabel("relative error")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)


def run(ctx):
    rng = ctx.rng(21)
    d = 16
    n = 33 if ctx.quick else 97
    q, k, v = (0.5 * rng.standard_normal((n, d)) for _ in range(3))

    # eq:2.1 / eq:2.2 / eq:P3: the C++ maps against numpy on the same draw.
    for kind, label in (("rff", "2.1"), ("positive", "2.2"), ("orthogonal", "2.3")):
        w = idattn.draw_feature_weights(kind, 64, d, seed=5)
        ctx.row(label, f"{kind} features: C++ vs numpy formula, R=64",
                idattn.compare(literal_features(q, w, "rff" if kind == "rff" else "positive"),
                               idattn.feature_map(q, kind, w), tol=1e-12), "ref (float64)")
    # eq:2.4: Taylor features reproduce the truncated kernel.
    t = q @ k.T / np.sqrt(d)
    ctx.row("2.4", "taylor features vs 1 + t + t^2/2",
            idattn.compare(1 + t + t * t / 2, idattn.feature_map(q, "taylor") @ idattn.feature_map(k, "taylor").T,
                           tol=1e-12), "ref (float64)")
    # eq:2.5 / eq:2.stab: three forms (stabilised in the api) against the literal (P4).
    w = idattn.draw_feature_weights("positive", 64, d, seed=6)
    want = literal_p4(literal_features(q, w, "positive"), literal_features(k, w, "positive"), v, True)
    for form, chunk in (("quadratic", 1), ("recurrent", 1), ("chunked", 1), ("chunked", 7), ("chunked", 2 * n)):
        ctx.row("2.5", f"{form} form (chunk {chunk}) vs numpy (P4), causal",
                idattn.compare(want, idattn.linear_attention(q, k, v, "positive", w, form=form, causal=True,
                                                             chunk=chunk), tol=1e-12), "ref (float64)")

    # Figures: error versus R (and versus state size), averaged over seeds.
    rs = [4, 16, 64, 256] if ctx.quick else [4, 16, 64, 256, 1024]
    res = error_vs_r(ctx.rng(22), rs, seeds=3 if ctx.quick else 8, n=32 if ctx.quick else 64, d=d)
    for which in ("kernel", "attention"):
        ctx.log(f"{which} error vs R, log-log slopes (Monte Carlo: -0.5): " +
                ", ".join(f"{kk} {s:+.3f}" for kk, s in slopes(res, which).items()))
    ctx.log(f"taylor (R_f={res['taylor']['rf']}): kernel error {res['taylor']['kernel']:.2e}, "
            f"attention error {res['taylor']['attention']:.2e}")
    fig, axs = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    plot_error_vs_r(axs, res)
    ctx.figure(fig, "02-error-vs-R", "feature-map error versus R (median over seeds, band min..max)")
    plt.close(fig)
    fig, axs = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    plot_error_vs_r(axs, res, state_size=True)
    ctx.figure(fig, "02-error-vs-state", "feature-map error versus state size R_f (d + 1)")
    plt.close(fig)
