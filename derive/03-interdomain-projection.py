"""Chapter 3 in the main job: the interdomain projection (P6)-(P9).

Table rows for the exact identities (3.1)-(3.5) against independent numpy formulas;
figures of the error of (P9) against (P4) versus M per basis, on white and on smooth
key trajectories, with the error of (P4) against softmax (P1) at the same R drawn as a
line, the same against the total state size M (R + d + 1), and the effective attention
matrix of eq:3.4 next to the exact (P4) weights.
Also imported by notebooks/03-interdomain-projection.py for the same figures.
"""
import matplotlib.pyplot as plt
import numpy as np

import idattn

TITLE = "The interdomain projection (P6)-(P9)"
BASES = ("legs", "gram", "dct")


def legs_by_quadrature(M, N, nodes=None):
    """eq:3.1 in numpy, independently of the C++ closed form: Gauss-Legendre quadrature of
    phi_m(s) = sqrt((2m+1)/N) P_m(2s/N - 1) (eq:3.legs) over every unit interval [n, n+1]."""
    x, w = np.polynomial.legendre.leggauss(nodes or max(M, 2))
    s = np.arange(N)[:, None] + (x[None, :] + 1) / 2  # (N, nodes)
    out = np.zeros((M, N))
    for m in range(M):
        c = np.zeros(m + 1)
        c[m] = 1
        vals = np.sqrt((2 * m + 1) / N) * np.polynomial.legendre.legval(2 * s / N - 1, c)
        out[m] = vals @ w / 2
    return out


def literal_p4(fq, fk, v, causal=False):
    """eq:P4 in numpy: masked F_q F_k^T, row-normalised."""
    a = fq @ fk.T
    if causal:
        n, nq = fk.shape[0], fq.shape[0]
        a = np.where(np.arange(n)[None, :] <= np.arange(nq)[:, None] + (n - nq), a, 0.0)
    return (a @ v) / a.sum(1, keepdims=True)


def literal_p9(fq, fk, v, phi):
    """eq:P6 / eq:P9 in numpy: U = Phi F_k, Gamma = Phi V, eta = Phi 1, O = F_q U^T Gamma / F_q U^T eta."""
    u, g, eta = phi @ fk, phi @ v, phi.sum(1)
    a = fq @ u.T
    return (a @ g) / (a @ eta)[:, None]


def smooth_keys(rng, n, d, scale=0.5, freqs=3):
    """Keys as a smooth function of time: a sum of `freqs` low frequencies with random amplitudes and phases."""
    t = np.arange(n) / n
    k = np.zeros((n, d))
    for j in range(1, freqs + 1):
        a = scale * rng.uniform(-1, 1, (1, d))
        ph = rng.uniform(0, 2 * np.pi, (1, d))
        k += a * np.cos(np.pi * j * t[:, None] + ph)
    return k


def rel(ref, x):
    return float(np.linalg.norm(x - ref) / np.linalg.norm(ref))


def error_vs_m(rng, ms, seeds, n=128, d=16, R=64, scale=0.5):
    """Relative error of (P9) against (P4) per basis, M and seed, on white and on smooth keys,
    and of (P4) against softmax (P1) at the same R, per seed. Non-causal."""
    out = {"ms": list(ms), "n": n, "d": d, "R": R, "kinds": {}}
    for kind in ("white", "smooth"):
        err = {b: np.zeros((len(ms), seeds)) for b in BASES}
        p4_vs_p1 = np.zeros(seeds)
        for s in range(seeds):
            q = scale * rng.standard_normal((n, d))
            k = scale * rng.standard_normal((n, d)) if kind == "white" else smooth_keys(rng, n, d, scale)
            v = rng.standard_normal((n, d))
            w = idattn.draw_feature_weights("positive", R, d, seed=int(rng.integers(1 << 30)))
            p4 = idattn.linear_attention(q, k, v, "positive", w, form="quadratic")
            p4_vs_p1[s] = rel(idattn.softmax_attention(q, k, v), p4)
            for b in BASES:
                for a, m in enumerate(ms):
                    o = idattn.interdomain_attention(q, k, v, "positive", w, basis=b, M=m)
                    err[b][a, s] = rel(p4, o)
        out["kinds"][kind] = {"err": err, "p4_vs_p1": p4_vs_p1}
    return out


def plot_error_vs_m(axs, res, state_size=False):
    """One panel per trajectory kind: median over seeds, band = min..max; dashed line = (P4) vs (P1)."""
    R, d = res["R"], res["d"]
    ms = np.array(res["ms"], float)
    for ax, (kind, r) in zip(axs, res["kinds"].items()):
        x = ms * (R + d + 1) if state_size else ms
        for b in BASES:
            e = np.maximum(r["err"][b], 1e-17)
            ax.loglog(x, np.median(e, axis=1), "o-", label=f"{b}: (P9) vs (P4)")
            ax.fill_between(x, e.min(axis=1), e.max(axis=1), alpha=0.15)
        p1 = float(np.median(r["p4_vs_p1"]))
        ax.axhline(p1, color="k", ls="--", lw=1, label=f"(P4) vs softmax (P1), R = {R}")
        if state_size:
            ax.axvline(R * (d + 1), color="gray", ls=":", lw=1, label="linear attention state R (d + 1)")
            ax.axvline(2 * res["n"] * d, color="gray", ls="-.", lw=1, label="softmax KV cache 2 N d")
        ax.set_xlabel("total state size M (R + d + 1)" if state_size else "basis functions M")
        ax.set_ylabel("relative error")
        ax.set_title(f"{kind} key trajectories, N = {res['n']} (eq:P9 vs eq:P4)", fontsize=9)
        ax.legend(fontsize=7)


def effective_matrices(rng, ms, n=64, d=16, R=64, basis="legs", causal=True, scale=1.0):
    """Exact (P4) weights and effective weights (eq:3.4) on smooth keys, each row normalised to sum
    to one and multiplied by the number of keys it sees (1 = the uniform weight)."""
    q = scale * rng.standard_normal((n, d))
    k = smooth_keys(rng, n, d, scale)
    w = idattn.draw_feature_weights("positive", R, d, seed=3)
    fq, fk = idattn.feature_map(q, "positive", w), idattn.feature_map(k, "positive", w)
    a = np.tril(fq @ fk.T) if causal else fq @ fk.T
    seen = (np.arange(n) + 1.0)[:, None] if causal else float(n)
    mats = {"exact (P4)": seen * a / a.sum(1, keepdims=True)}
    for m in ms:
        wm = idattn.interdomain_effective_weights(fq, fk, basis, m, causal)
        mats[f"{basis}, M = {m} (eq:3.4)"] = seen * wm / wm.sum(1, keepdims=True)
    return mats


def plot_effective(axs, mats):
    """Weights relative to uniform on a colour scale centred at 0 (negative weights are blue)."""
    vmax = np.percentile(np.abs(mats["exact (P4)"]), 99)
    for ax, (title, m) in zip(axs, mats.items()):
        im = ax.imshow(m, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("key n")
    axs[0].set_ylabel("query i")
    return im


def run(ctx):
    rng = ctx.rng(31)
    d, R = 16, 32
    n = 33 if ctx.quick else 97
    q, k, v = (0.5 * rng.standard_normal((n, d)) for _ in range(3))
    v = v / 0.5
    w = idattn.draw_feature_weights("positive", R, d, seed=7)
    fq, fk = idattn.feature_map(q, "positive", w), idattn.feature_map(k, "positive", w)

    # eq:3.1: the closed-form interval integrals against numpy quadrature.
    M = 12
    ctx.row("3.1", f"LegS interval integrals: C++ closed form vs numpy quadrature, M={M}, N={n}",
            idattn.compare(legs_by_quadrature(M, n), idattn.basis_matrix("legs", M, n), tol=1e-12), "ref (float64)")
    # eq:3.gram / eq:3.dct: orthonormal rows, M = N.
    for b, label in (("gram", "3.gram"), ("dct", "3.dct")):
        phi = idattn.basis_matrix(b, n, n)
        ctx.row(label, f"{b}: Phi Phi^T = I, M = N = {n}", idattn.compare(np.eye(n), phi @ phi.T, tol=1e-12),
                "ref (float64)")
    # eq:P9: the C++ state form against the numpy formula, every real basis.
    for b in BASES:
        ctx.row("P9", f"{b}: (P9) C++ vs numpy U, Gamma, eta formula, M={M}",
                idattn.compare(literal_p9(fq, fk, v, idattn.basis_matrix(b, M, n)),
                               idattn.interdomain_attention_features(fq, fk, v, b, M), tol=1e-12), "ref (float64)")
    # eq:3.2: key features inside the span of a discrete basis give (P4), any values.
    for b in ("gram", "dct"):
        phi = idattn.basis_matrix(b, 6, n)
        fk_span = phi.T @ (phi @ fk)
        ctx.row("3.2", f"{b}: keys in the span (M=6), (P9) vs numpy (P4)",
                idattn.compare(literal_p4(fq, fk_span, v), idattn.interdomain_attention_features(fq, fk_span, v, b, 6),
                               tol=1e-12), "ref (float64)")
    # eq:3.3: a complete discrete basis gives (P4), causal.
    for b in ("gram", "dct"):
        ctx.row("3.3", f"{b}: M = N, causal (P9) vs numpy (P4)",
                idattn.compare(literal_p4(fq, fk, v, True),
                               idattn.interdomain_attention_features(fq, fk, v, b, n, causal=True), tol=1e-12),
                "ref (float64)")
    # eq:3.4 / eq:3.causal: state form vs effective matrix, causal; row i vs numpy on its prefix.
    for b in BASES:
        wm = idattn.interdomain_effective_weights(fq, fk, b, M, causal=True)
        o = idattn.interdomain_attention_features(fq, fk, v, b, M, causal=True)
        ctx.row("3.4", f"{b}: causal state form vs effective matrix, M={M}",
                idattn.compare(o, (wm @ v) / wm.sum(1, keepdims=True), tol=1e-12), "ref (float64)")
        rows = np.stack([literal_p9(fq[i:i + 1], fk[:i + 1], v[:i + 1],
                                    idattn.basis_matrix(b, M if b == "legs" else min(M, i + 1), i + 1))[0]
                         for i in range(n)])
        ctx.row("3.causal", f"{b}: causal row i vs numpy (P9) on the prefix basis",
                idattn.compare(rows, o, tol=1e-12), "ref (float64)")
    # eq:3.eta: the denominator of (P9) is that of (P4) for every M.
    u, _, eta = idattn.interdomain_project(fk, v, "legs", 3)
    ctx.row("3.eta", "LegS M=3: F_q U^T eta vs F_q F_k^T 1",
            idattn.compare((fq @ fk.T).sum(1), (fq @ u.T) @ eta, tol=1e-12), "ref (float64)")
    # eq:3.5: the Hermitian readout with the full unitary DFT is (P4).
    ctx.row("3.5", f"fourier, M = N = {n}: Hermitian readout vs numpy (P4)",
            idattn.compare(literal_p4(fq, fk, v), idattn.interdomain_attention_features(fq, fk, v, "fourier", n),
                           tol=1e-12), "ref (float64)")

    # The fast kernels against the reference (rule with the naive32 baseline), when a device exists.
    for b, causal in (("legs", False), ("dct", True), ("legs", True)):
        label, what = "P9", f"{b}, causal={causal}: fast vs ref (baseline naive32), M=32"
        if not ctx.has_device:
            ctx.skipped(label, what, ctx.device)
            continue
        qb, kb, vb = (rng.standard_normal((2, 4, 257, 64)) * s for s in (0.5, 0.5, 1.0))
        wb = idattn.draw_feature_weights("positive", 64, 64, seed=9)
        args = (qb, kb, vb, "positive", wb, b, 32, causal)
        ref = idattn.interdomain_attention(*args)
        naive = idattn.interdomain_attention(*args, impl="naive32")
        run_fast = idattn.interdomain_attention(*args, impl="fast", full=True)
        ctx.row(label, what + ", B=2 H=4 N=257 d=R=64", idattn.compare(ref, run_fast["out"], baseline=naive),
                run_fast["backend"])

    # Figures.
    ms = [1, 2, 4, 8, 16, 32, 64] if ctx.quick else [1, 2, 4, 8, 16, 32, 64, 128, 256]
    res = error_vs_m(ctx.rng(32), ms, seeds=2 if ctx.quick else 5, n=64 if ctx.quick else 256, d=d, R=64)
    for kind, r in res["kinds"].items():
        ctx.log(f"{kind}: (P4) vs (P1) {np.median(r['p4_vs_p1']):.2e}; (P9) vs (P4) at M = " +
                ", ".join(f"{m}: " + "/".join(f"{np.median(r['err'][b][a]):.1e}" for b in BASES)
                          for a, m in enumerate(ms)) + " (legs/gram/dct)")
    fig, axs = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained", sharey=True)
    plot_error_vs_m(axs, res)
    ctx.figure(fig, "03-error-vs-M", "interdomain (P9) vs linear attention (P4) versus M, white and smooth keys")
    plt.close(fig)
    fig, axs = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained", sharey=True)
    plot_error_vs_m(axs, res, state_size=True)
    ctx.figure(fig, "03-error-vs-state", "the same errors versus the total state size M (R + d + 1)")
    plt.close(fig)
    mats = effective_matrices(ctx.rng(33), [2, 8, 32], n=48 if ctx.quick else 96)
    fig, axs = plt.subplots(1, len(mats), figsize=(3.2 * len(mats), 3.4), layout="constrained")
    im = plot_effective(axs, mats)
    fig.colorbar(im, ax=axs, shrink=0.8)
    for title, m in mats.items():
        ctx.log(f"effective matrix {title}: smallest weight (relative to uniform) {m.min():+.2f}")
    ctx.figure(fig, "03-effective-matrix", "causal effective attention weights (eq:3.4, LegS, smooth keys), "
                                           "relative to uniform, next to the exact (P4) weights")
    plt.close(fig)
