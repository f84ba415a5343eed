"""Chapter 4 in the main job: the SSM basis recurrence (P2), (P11).

Table rows: the recurrence (eq:P11) and the basis (eq:4.psi) against numpy, the three other forms
of the states (eq:4.3, eq:4.4, eq:4.5) against the recurrence (with the max relative difference
logged), the exact LegS update (eq:4.1) against chapter 3's projection for every t, and the damped
Fourier attention against numpy decayed linear attention (eq:4.6); fast rows when a device exists.
Figures: (a) the error of the approximate LegS updates (eq:4.2) versus sub-steps per token with
fitted orders; (b) how well M S4D modes with a least-squares readout reproduce the LegS functions
on a window (eq:4.psi); (c) the error of interdomain attention over an S4D basis (eq:4.readout)
against chapter 3's exact LegS attention and against softmax versus the state size; (e) the
damped-Fourier identity below L and its aliasing beyond L versus alpha (eq:4.6, eq:4.alias).
Also imported by notebooks/04-ssm-basis-recurrence.py for the same figures.
"""
import matplotlib.pyplot as plt
import numpy as np

import idattn

TITLE = "The SSM basis recurrence (P2), (P11)"
FORMS = ("explicit", "fft", "chunked")
FORM_LABEL = {"explicit": "4.3", "fft": "4.4", "chunked": "4.5"}


def rel(ref, x):
    return float(np.linalg.norm(x - ref) / np.linalg.norm(ref))


def max_rel(ref, x):
    """Largest |x - ref| relative to the largest |ref|."""
    return float(np.abs(x - ref).max() / np.abs(ref).max())


def ri(x):
    """Complex -> real with a trailing axis of 2, for idattn.compare."""
    return np.stack([x.real, x.imag], -1)


def literal_recurrence(lam, bbar, z):
    """eq:P11 in numpy: x_t = Lambda * x_{t-1} + Bbar z_t, states (N, M, C)."""
    x = np.zeros((lam.size, z.shape[1]), complex)
    out = []
    for t in range(z.shape[0]):
        x = lam[:, None] * x + bbar[:, None] * z[t][None, :]
        out.append(x.copy())
    return np.array(out)


def decayed_linear(fq, fk, v, alpha):
    """eq:4.6 in numpy: weights xi(q_i)^T xi(k_n) exp(-2 alpha (p_i - n)), n <= p_i, row-normalised."""
    n, nq = fk.shape[0], fq.shape[0]
    p = np.arange(nq)[:, None] + (n - nq)
    lag = p - np.arange(n)[None, :]
    a = np.where(lag >= 0, (fq @ fk.T) * np.exp(-2 * alpha * np.maximum(lag, 0)), 0.0)
    return (a @ v) / a.sum(1, keepdims=True)


def legs_projection_every_t(M, z):
    """Chapter 3's closed-form projection u(t) = Phi(LegS, M, t) z[:t] for every t = 1..N (eq:3.1)."""
    return np.stack([idattn.basis_matrix("legs", M, t) @ z[:t] for t in range(1, z.shape[0] + 1)])


def legs_approx_errors(substeps, M=8, n=64, seed=0):
    """Relative RMS error of all LegS states of Euler and bilinear (eq:4.2) against the exact update (eq:4.1)."""
    z = np.random.default_rng(seed).standard_normal((n, 1))
    exact = idattn.legs_states(z, M, "exact")
    return {m: np.array([rel(exact, idattn.legs_states(z, M, m, s)) for s in substeps]) for m in ("euler", "bilinear")}


def fitted_order(substeps, err, lo=8):
    s = np.array(substeps, float)
    keep = s >= lo
    return float(np.polyfit(np.log(s[keep]), np.log(err[keep]), 1)[0])


def plot_legs_orders(ax, substeps, errs):
    s = np.array(substeps, float)
    for m, e in errs.items():
        ax.loglog(s, e, "o-", label=f"{m}: fitted slope {fitted_order(substeps, e):+.2f} (s >= 8)")
    for order, ls in ((1, "--"), (2, ":")):
        e0 = errs["euler" if order == 1 else "bilinear"][-1]
        ax.loglog(s, e0 * (s / s[-1]) ** (-order), "k" + ls, lw=1, label=f"slope -{order}")
    ax.set_xlabel("sub-steps per token s")
    ax.set_ylabel("relative RMS error of the states")
    ax.set_title("LegS: Euler and bilinear (eq:4.2) vs the exact update (eq:4.1)", fontsize=9)
    ax.legend(fontsize=7)


def basis_fit_errors(ms, window=64, K=6, inits=("inv", "lin"), delta=None):
    """Relative residual of the best real readout Re(psi c) over M S4D modes (eq:4.psi, c complex, least squares)
    reproducing the first K LegS functions of chapter 3 on a window of `window` tokens, read at its end (lag
    tau = window - 1 - n). Delta = 1 / window unless given."""
    delta = 1.0 / window if delta is None else delta
    target = idattn.basis_matrix("legs", K, window)[:, ::-1].T  # (window, K), column k = function k over the lag
    out = {}
    for init in inits:
        errs = []
        for M in ms:
            psi = idattn.ssm_impulse_response(window, "s4d", init, M, delta)
            design = np.concatenate([psi.real, -psi.imag], 1)  # Re(psi (a + i b)) = Re psi a - Im psi b
            c, *_ = np.linalg.lstsq(design, target, rcond=None)
            errs.append(np.linalg.norm(design @ c - target) / np.linalg.norm(target))
        out[init] = np.array(errs)
    return out


def plot_basis_fit(ax, ms, fits, window, K):
    for init, e in fits.items():
        ax.semilogy(ms, np.maximum(e, 1e-17), "o-", label=f"S4D-{init.capitalize()}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("S4D modes M")
    ax.set_ylabel("relative residual (least squares)")
    ax.set_title(f"first {K} LegS functions on a window of {window} tokens\nfrom M S4D modes (eq:4.psi), "
                 f"Delta = 1/{window}", fontsize=9)
    ax.legend(fontsize=7)


def attention_error_vs_m(rng, ms, seeds, n=128, d=16, R=32, scale=0.5):
    """Causal: S4D-Inv attention (eq:4.readout, Delta = 1/n) against chapter 3's LegS attention (eq:P9 on the
    prefix basis) and against softmax (P1); LegS against softmax; linear attention (P4) against softmax."""
    res = {"ms": list(ms), "n": n, "d": d, "R": R, "s4d_vs_legs": np.zeros((len(ms), seeds)),
           "s4d_vs_p1": np.zeros((len(ms), seeds)), "legs_vs_p1": np.zeros((len(ms), seeds)), "p4_vs_p1": np.zeros(seeds)}
    for s in range(seeds):
        q, k = (scale * rng.standard_normal((n, d)) for _ in range(2))
        v = rng.standard_normal((n, d))
        w = idattn.draw_feature_weights("positive", R, d, seed=int(rng.integers(1 << 30)))
        p1 = idattn.softmax_attention(q, k, v, causal=True)
        res["p4_vs_p1"][s] = rel(p1, idattn.linear_attention(q, k, v, "positive", w, form="quadratic", causal=True))
        for a, M in enumerate(ms):
            o_legs = idattn.interdomain_attention(q, k, v, "positive", w, basis="legs", M=M, causal=True)
            o_s4d = idattn.ssm_attention(q, k, v, "positive", w, "s4d", "inv", M, 1.0 / n, form="chunked")
            res["s4d_vs_legs"][a, s] = rel(o_legs, o_s4d)
            res["s4d_vs_p1"][a, s] = rel(p1, o_s4d)
            res["legs_vs_p1"][a, s] = rel(p1, o_legs)
    return res


def plot_attention_error(ax, res):
    x = np.array(res["ms"], float) * (res["R"] + res["d"] + 1)
    for key, label in (("s4d_vs_legs", "S4D-Inv (eq:4.readout) vs LegS (ch. 3, eq:P9)"),
                       ("s4d_vs_p1", "S4D-Inv vs softmax (P1)"), ("legs_vs_p1", "LegS vs softmax (P1)")):
        e = np.maximum(res[key], 1e-17)
        ax.loglog(x, np.median(e, 1), "o-", label=label)
        ax.fill_between(x, e.min(1), e.max(1), alpha=0.15)
    ax.axhline(float(np.median(res["p4_vs_p1"])), color="k", ls="--", lw=1, label=f"(P4) vs (P1), R = {res['R']}")
    ax.set_xlabel("state size M (R + d + 1)")
    ax.set_ylabel("relative error")
    ax.set_title(f"causal attention, N = {res['n']}, S4D Delta = 1/N", fontsize=9)
    ax.legend(fontsize=7)


def fourier_errors(rng, alphas, L=32, n=96, d=8, R=16):
    """Damped Fourier attention (eq:4.6) against numpy decayed linear attention, split at t < L and t >= L."""
    q, k = (0.5 * rng.standard_normal((n, d)) for _ in range(2))
    v = rng.standard_normal((n, d))
    w = idattn.draw_feature_weights("positive", R, d, seed=5)
    fq, fk = idattn.feature_map(q, "positive", w), idattn.feature_map(k, "positive", w)
    below, beyond = [], []
    for a in alphas:
        o = idattn.ssm_attention_features(fq, fk, v, "fourier", L=L, alpha=a, form="fft")
        want = decayed_linear(fq, fk, v, a)
        below.append(rel(want[:L], o[:L]))
        beyond.append(rel(want[L:], o[L:]))
    return {"alphas": list(alphas), "L": L, "n": n, "below": np.array(below), "beyond": np.array(beyond)}


def plot_fourier(ax, r):
    a = np.array(r["alphas"], float)
    ax.semilogy(a, np.maximum(r["below"], 1e-17), "o-", label="t < L: identity (eq:4.6)")
    ax.semilogy(a, np.maximum(r["beyond"], 1e-17), "s-", label="t >= L: aliasing (eq:4.alias)")
    ax.semilogy(a, np.exp(-a * r["L"]), "k--", lw=1, label="exp(-alpha L)")
    ax.set_xlabel("damping alpha")
    ax.set_ylabel("relative error vs decayed linear attention")
    ax.set_title(f"damped Fourier basis, L = {r['L']}, N = {r['n']}", fontsize=9)
    ax.legend(fontsize=7)


def run(ctx):
    rng = ctx.rng(41)
    n = 65 if ctx.quick else 257
    z = rng.standard_normal((n, 5))

    # eq:P11 and eq:4.psi against numpy.
    for init in ("inv", "lin"):
        lam, bbar = idattn.ssm_parameters("s4d", init, 16, 0.05)
        x = idattn.ssm_states(z, "s4d", init, 16, 0.05)
        ctx.row("P11", f"S4D-{init}: recurrence C++ vs numpy, M=16, N={n}, C=5",
                idattn.compare(ri(literal_recurrence(lam, bbar, z)), ri(x), tol=1e-12), "ref (float64)")
        psi = idattn.ssm_impulse_response(n, "s4d", init, 16, 0.05)
        ctx.row("4.psi", f"S4D-{init}: impulse response vs numpy Lambda^tau Bbar",
                idattn.compare(ri(lam[None, :] ** np.arange(n)[:, None] * bbar[None, :]), ri(psi), tol=1e-12),
                "ref (float64)")
        # eq:4.3 / eq:4.4 / eq:4.5: every form against the recurrence (plot d).
        for form in FORMS:
            y = idattn.ssm_states(z, "s4d", init, 16, 0.05, form=form, chunk=7)
            ctx.row(FORM_LABEL[form], f"S4D-{init}: {form} vs recurrence (chunk 7), max rel diff {max_rel(x, y):.1e}",
                    idattn.compare(ri(x), ri(y), tol=1e-12), "ref (float64)")
    # eq:4.1: the exact LegS update is chapter 3's projection for every t (eq:4.scale).
    M = 8
    zl = z[: min(n, 65), :2]
    c = idattn.legs_states(zl, M)
    t = np.arange(1, zl.shape[0] + 1)[:, None, None]
    ctx.row("4.1", f"LegS exact update sqrt(t) c(t) vs chapter 3 projection, every t, M={M}",
            idattn.compare(legs_projection_every_t(M, zl), np.sqrt(t) * c, tol=1e-12), "ref (float64)")
    # eq:4.6: damped Fourier attention = decayed linear attention below L.
    L = 32
    d, R = 8, 16
    q, k = (0.5 * rng.standard_normal((L, d)) for _ in range(2))
    v = rng.standard_normal((L, d))
    w = idattn.draw_feature_weights("positive", R, d, seed=2)
    fq, fk = idattn.feature_map(q, "positive", w), idattn.feature_map(k, "positive", w)
    for alpha in (0.0, 0.1):
        ctx.row("4.6", f"damped Fourier L={L}, alpha={alpha}: attention vs numpy decayed linear attention",
                idattn.compare(decayed_linear(fq, fk, v, alpha),
                               idattn.ssm_attention_features(fq, fk, v, "fourier", L=L, alpha=alpha), tol=1e-12),
                "ref (float64)")

    # The fast kernels against the reference (rule with the naive32 baseline), when a device exists.
    for what, label in (("states, chunked scan", "4.5"), ("states, cuFFT", "4.4"), ("attention, fused", "4.readout")):
        desc = f"S4D-Inv M=64 Delta=0.01: {what}, fast vs ref (baseline naive32)"
        if not ctx.has_device:
            ctx.skipped(label, desc, ctx.device)
            continue
        if label == "4.readout":
            qb, kb, vb = (rng.standard_normal((2, 4, 257, 64)) * s for s in (0.5, 0.5, 1.0))
            wb = idattn.draw_feature_weights("positive", 64, 64, seed=9)
            args = (qb, kb, vb, "positive", wb, "s4d", "inv", 64, 0.01)
            ref = idattn.ssm_attention(*args, form="chunked")
            naive = idattn.ssm_attention(*args, form="chunked", impl="naive32")
            fast = idattn.ssm_attention(*args, form="chunked", impl="fast", full=True)
            ctx.row(label, desc + ", B=2 H=4 N=257 d=R=64", idattn.compare(ref, fast["out"], baseline=naive),
                    fast["backend"])
        else:
            form = "chunked" if label == "4.5" else "fft"
            zb = rng.standard_normal((1025, 129))
            ref = idattn.ssm_states(zb, M=64, delta=0.01, form=form)
            naive = idattn.ssm_states(zb, M=64, delta=0.01, form=form, impl="naive32")
            fast = idattn.ssm_states(zb, M=64, delta=0.01, form=form, impl="fast", full=True)
            ctx.row(label, desc + ", N=1025 C=129", idattn.compare(ri(ref), ri(fast["out"]), baseline=ri(naive)),
                    fast["backend"])

    # (a) the orders of the approximate LegS updates.
    substeps = [1, 2, 4, 8, 16, 32, 64]
    errs = legs_approx_errors(substeps, M=8, n=32 if ctx.quick else 64)
    ctx.log("eq:4.2 fitted orders over s = 8..64: " +
            ", ".join(f"{m} {fitted_order(substeps, e):+.2f}" for m, e in errs.items()))
    fig, ax = plt.subplots(figsize=(5.5, 4.2), layout="constrained")
    plot_legs_orders(ax, substeps, errs)
    ctx.figure(fig, "04-legs-orders", "error of Euler and bilinear LegS updates (eq:4.2) versus sub-steps per token, "
                                      "against the exact update (eq:4.1)")
    plt.close(fig)

    # (b) S4D modes reproducing the LegS functions.
    ms = [1, 2, 4, 8, 16, 32, 64]
    window, K = 64, 6
    fits = basis_fit_errors(ms, window, K)
    ctx.log("S4D least-squares fit of the LegS functions: " + "; ".join(
        f"{i}: " + ", ".join(f"M={m} {e:.1e}" for m, e in zip(ms, f)) for i, f in fits.items()))
    fig, ax = plt.subplots(figsize=(5.5, 4.2), layout="constrained")
    plot_basis_fit(ax, ms, fits, window, K)
    ctx.figure(fig, "04-s4d-fits-legs", "how well M S4D modes (eq:4.psi) reproduce the LegS basis functions on a window")
    plt.close(fig)

    # (c) attention over an S4D basis versus state size.
    ams = [2, 4, 8, 16, 32] if ctx.quick else [2, 4, 8, 16, 32, 64, 128]
    res = attention_error_vs_m(ctx.rng(42), ams, seeds=1 if ctx.quick else 3, n=48 if ctx.quick else 256)
    ctx.log("attention (median): " + ", ".join(
        f"M={m}: s4d/legs {np.median(res['s4d_vs_legs'][a]):.1e}, s4d/p1 {np.median(res['s4d_vs_p1'][a]):.1e}, "
        f"legs/p1 {np.median(res['legs_vs_p1'][a]):.1e}" for a, m in enumerate(ams)) +
        f"; (P4)/(P1) {np.median(res['p4_vs_p1']):.1e}")
    fig, ax = plt.subplots(figsize=(6, 4.4), layout="constrained")
    plot_attention_error(ax, res)
    ctx.figure(fig, "04-attention-vs-state", "interdomain attention over an S4D basis (eq:4.readout) against chapter "
                                             "3's LegS attention and softmax, versus the state size M (R + d + 1)")
    plt.close(fig)

    # (e) the damped Fourier identity and its aliasing.
    alphas = [0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5]
    fr = fourier_errors(ctx.rng(43), alphas, L=32, n=96 if ctx.quick else 160)
    ctx.log("damped Fourier: " + ", ".join(f"alpha={a}: below L {b:.1e}, beyond L {c:.1e}"
                                           for a, b, c in zip(alphas, fr["below"], fr["beyond"])))
    fig, ax = plt.subplots(figsize=(5.5, 4.2), layout="constrained")
    plot_fourier(ax, fr)
    ctx.figure(fig, "04-damped-fourier", "damped Fourier attention: exact decayed linear attention below L (eq:4.6), "
                                         "aliasing beyond L damped by exp(-alpha L) (eq:4.alias)")
    plt.close(fig)
