"""Chapter 5 in the main job: the learned relaxation (P10)-(P13), Figure 3.

Table rows: the full variant's forward against a literal numpy transcription of chapter 5's contract
(eq:P10, eq:5.conv, eq:5.rope, eq:P12, eq:5.ssm, eq:5.C, eq:P13, eq:5.out); the softmax variant
against chapter 1 per head (eq:5.softmax); the folded (eq:5.fold) and chunkwise (eq:5.1) forms
against the recurrence; the hand-written backward (eq:5.adjoint) against central differences, one
random direction per parameter group; the Lambda-division backward (eq:5.lambda-div) against the
stored one where |Lambda| >= 1/2. There is no CUDA kernel for this chapter yet (a skipped row says so).
Figures: (a) the gradient check's error versus the step h per parameter group (truncation h^2
against round-off u/h); (b) the Lambda-division backward's error versus |Lambda| and the checkpoint
interval K, with the bound of eq:5.lambda-err; (c) the learned relaxation fitted with Adam to a
fixed causal softmax layer, error versus state size, next to chapters 2-4's fixed approximations of
the same softmax attention and the prefix mean.
Also imported by notebooks/05-learned-layer.py for the same figures.
"""
import matplotlib.pyplot as plt
import numpy as np

import idattn

TITLE = "The learned relaxation (P10)-(P13), Figure 3"
U = np.finfo(float).eps / 2


def rel(ref, x):
    return float(np.linalg.norm(np.ravel(x) - np.ravel(ref)) / np.linalg.norm(np.ravel(ref)))


# ---- A literal numpy transcription of chapter 5's contract (full variant, one sequence) ------------

def silu(u):
    return u / (1 + np.exp(-u))


def short_conv(u, conv):
    """eq:5.conv: y_t[c] = sum_j conv[c, j] u_{t-3+j}[c], zero before t = 0."""
    n = u.shape[0]
    pad = np.vstack([np.zeros((3, u.shape[1])), u])
    return sum(conv[:, j][None, :] * pad[j:j + n] for j in range(4))


def rope(u, H):
    """eq:5.rope: rotate-half RoPE on each head's w channels."""
    n, w = u.shape[0], u.shape[1] // H
    half = w // 2
    theta = np.arange(n)[:, None] * 10000.0 ** (-2 * np.arange(half) / w)[None, :]
    out = u.copy()
    for h in range(H):
        a, b = u[:, h * w:h * w + half], u[:, h * w + half:(h + 1) * w]
        out[:, h * w:h * w + half] = a * np.cos(theta) - b * np.sin(theta)
        out[:, h * w + half:(h + 1) * w] = b * np.cos(theta) + a * np.sin(theta)
    return out


def heads(u, H):
    return u.reshape(u.shape[0], H, -1)


def xi(u, H):
    """eq:P10 per head."""
    s = heads(silu(u), H)
    return (s / np.sqrt((s ** 2).sum(-1, keepdims=True) + 1e-6)).reshape(u.shape)


def norm_bias(u, g, b):
    """eq:P12 per head."""
    H = g.shape[0]
    x = heads(u, H)
    return (g[None] * x / np.sqrt((x ** 2).mean(-1, keepdims=True) + 1e-6) + b[None]).reshape(u.shape)


def numpy_full_layer(p, x):
    """The full variant (Figure 3a) for x (N, D), every step of chapter 5's contract in numpy."""
    H = p["heads"]
    q = xi(rope(short_conv(x @ p["W_q"], p["conv_q"]), H), H)
    k = norm_bias(xi(rope(short_conv(x @ p["W_k"], p["conv_k"]), H), H), p["g_k"], p["b_k"])
    v = norm_bias(x @ p["W_v"], p["g_v"], p["b_v"])
    R, d = q.shape[1] // H, v.shape[1] // H
    o = np.zeros((x.shape[0], H * d))
    for h in range(H):
        lam = np.exp(np.exp(p["log_dt"][h]) * (-np.exp(p["log_A_real"][h]) + 1j * p["A_imag"][h]))  # eq:5.ssm
        B = p["B"][h, :, 0] + 1j * p["B"][h, :, 1]
        C = p["C"][h, ..., 0] + 1j * p["C"][h, ..., 1]
        z = np.hstack([k[:, h * R:(h + 1) * R], v[:, h * d:(h + 1) * d]])
        X = np.zeros((lam.size, R + d), complex)
        for t in range(x.shape[0]):
            X = lam[:, None] * X + B[:, None] * z[t][None, :]  # eq:5.ssm
            Y = C @ X                                         # eq:5.C
            a = Y[:, :R].conj() @ q[t, h * R:(h + 1) * R]     # eq:P13
            o[t, h * d:(h + 1) * d] = (a @ Y[:, R:]).real
    if "W_g" in p:
        o = o * silu(x @ p["W_g"])
    return o @ p["W_o"]                                       # eq:5.out


def numpy_softmax_layer(p, x):
    """eq:5.softmax with chapter 1's reference per head (R = d): rope(q), rope(k), causal softmax, W_o."""
    H = p["heads"]
    q, k, v = rope(x @ p["W_q"], H), rope(x @ p["W_k"], H), x @ p["W_v"]
    split = lambda a: a.reshape(a.shape[0], H, -1).transpose(1, 0, 2)[None]  # noqa: E731
    o = idattn.softmax_attention(split(q), split(k), split(v), causal=True)[0]
    return o.transpose(1, 0, 2).reshape(x.shape[0], -1) @ p["W_o"]


def perturbed(variant, seed, D=6, H=2, R=4, d=3, M=4, gate=True):
    """layer_init's parameters moved off every special point; log Delta in [log 0.05, log 0.5]."""
    rng = np.random.default_rng(seed)
    p = idattn.layer_init(variant, D, H, R, d, M, seed=seed, gate=gate)
    for n in p:
        if n == "log_dt":
            p[n] = rng.uniform(np.log(0.05), np.log(0.5), p[n].shape)
        elif n != "heads":
            p[n] = p[n] + 0.3 * rng.standard_normal(p[n].shape)
    return p


# ---- (a) the gradient check -------------------------------------------------------------

GROUPS = {"projections W": ("W_q", "W_k", "W_v", "W_a", "W_b", "W_g", "W_o"),
          "short conv": ("conv_q", "conv_k", "conv_a", "conv_b"),
          "N+b gains, biases": ("g_k", "b_k", "g_v", "b_v", "g_a", "b_a", "g_b", "b_b"),
          "Delta, A": ("log_dt", "log_A_real", "A_imag"), "B": ("B",), "C": ("C",), "c_read": ("c_read",),
          "input x": ("x",)}


def gradient_check_errors(steps, variant="full", N=17, seed=5):
    """For each parameter group and one random unit direction u, the relative error of the central
    difference (L(p + h u) - L(p - h u)) / 2h against the backward's g . u, for every step h."""
    rng = np.random.default_rng(seed)
    p = perturbed(variant, seed)
    x = rng.standard_normal((2, N, 6))
    w = rng.standard_normal((2, N, 6))
    g = idattn.layer_backward(p, x, w, variant)
    loss = lambda pp, xx: float((idattn.layer_forward(pp, xx, variant) * w).sum())  # noqa: E731
    out = {}
    for group, names in GROUPS.items():
        names = [n for n in names if n == "x" or n in p]
        if not names:
            continue
        dirs = {n: rng.standard_normal(x.shape if n == "x" else p[n].shape) for n in names}
        norm = np.sqrt(sum((u ** 2).sum() for u in dirs.values()))
        dirs = {n: u / norm for n, u in dirs.items()}
        exact = sum((g[n] * u).sum() for n, u in dirs.items())
        errs = []
        for h in steps:
            def shifted(s):
                pp = dict(p)
                xx = x
                for n, u in dirs.items():
                    if n == "x":
                        xx = x + s * u
                    else:
                        pp[n] = p[n] + s * u
                return loss(pp, xx)
            fd = (shifted(h) - shifted(-h)) / (2 * h)
            errs.append(abs(fd - exact) / abs(exact))
        out[group] = np.array(errs)
    return out


def plot_gradient_check(ax, steps, errs):
    for group, e in errs.items():
        ax.loglog(steps, np.maximum(e, 1e-17), "o-", ms=3, label=group)
    h = np.array(steps)
    ax.loglog(h[h >= 1e-6], 1e-1 * h[h >= 1e-6] ** 2, "k--", lw=0.8, label="slope 2 (truncation)")
    ax.loglog(h, 1e-15 / h, "k:", lw=0.8, label="slope -1 (round-off)")
    ax.axvline(1e-5, color="grey", lw=0.5)
    ax.text(1.1e-5, 1e-16, "tests: h = 1e-5,\n4th-order stencil", fontsize=7, color="grey")
    ax.set_xlabel("step h")
    ax.set_ylabel("relative error of the directional derivative")
    ax.set_title("gradient check (eq:5.adjoint): second-order central differences,\nfull variant, N = 17, one random direction per group", fontsize=9)
    ax.legend(fontsize=7)


# ---- (b) the Lambda-division backward -----------------------------------------------------

def lambda_division_errors(rhos, Ks, variant="s4d", N=64, seed=7):
    """Relative error of the Lambda-division gradients (every array, stacked) against the stored
    backward, with every mode at |Lambda| = rho, for each checkpoint interval K."""
    rng = np.random.default_rng(seed)
    p = perturbed(variant, seed)
    x = rng.standard_normal((1, N, 6))
    dy = rng.standard_normal((1, N, 6))
    out = np.zeros((len(Ks), len(rhos)))
    for j, rho in enumerate(rhos):
        pp = dict(p)
        pp["log_A_real"] = np.log(-np.log(rho) / np.exp(p["log_dt"]))[:, None] * np.ones_like(p["log_A_real"])
        ref = idattn.layer_backward(pp, x, dy, variant)
        flat_ref = np.concatenate([ref[n].ravel() for n in sorted(ref)])
        for i, K in enumerate(Ks):
            g = idattn.layer_backward(pp, x, dy, variant, backward="lambda-division", checkpoint=K)
            out[i, j] = rel(flat_ref, np.concatenate([g[n].ravel() for n in sorted(g)]))
    return out


def plot_lambda_division(ax, rhos, Ks, errs):
    for i, K in enumerate(Ks):
        line, = ax.loglog(rhos, np.maximum(errs[i], 1e-17), "o-", ms=3,
                          label=f"K = {K}" + (" (every state a checkpoint: exact)" if K == 1 else ""))
        bound = [16 * U * sum(r ** -j for j in range(1, K)) for r in rhos]
        if K > 1:
            ax.loglog(rhos, bound, "--", color=line.get_color(), lw=0.8)
    ax.set_ylim(1e-17, 1e3)
    ax.set_xlabel("|Lambda| (every mode)")
    ax.set_ylabel("relative error of the gradients")
    ax.set_title("Lambda-division backward (eq:5.lambda-div), s4d variant, N = 64;\n"
                 "dashed: the bound on the recovered states, 16u sum_{i<K} |Lambda|^-i (eq:5.lambda-err)", fontsize=9)
    ax.legend(fontsize=7)


# ---- (c) the learned relaxation versus state size -----------------------------------------

def adam_fit(variant, params, x, target, steps, lr=1e-2):
    """Fit params to reproduce target = y(x) in relative squared error with plain Adam; returns the
    fitted params and the loss curve."""
    p = {n: (v.copy() if n != "heads" else v) for n, v in params.items()}
    m = {n: np.zeros_like(v) for n, v in p.items() if n != "heads"}
    s = {n: np.zeros_like(p[n]) for n in m}
    scale = float((target ** 2).sum())
    b1, b2, eps = 0.9, 0.999, 1e-8
    curve = []
    for it in range(1, steps + 1):
        y = idattn.layer_forward(p, x, variant)
        curve.append(float(((y - target) ** 2).sum() / scale))
        g = idattn.layer_backward(p, x, 2 * (y - target) / scale, variant)
        for n in m:
            m[n] = b1 * m[n] + (1 - b1) * g[n]
            s[n] = b2 * s[n] + (1 - b2) * g[n] ** 2
            p[n] = p[n] - lr * (m[n] / (1 - b1 ** it)) / (np.sqrt(s[n] / (1 - b2 ** it)) + eps)
    return p, curve


def relaxation_experiment(ms, seeds, steps, variants=("full", "s4d"), D=16, R=8, d=8, N=32, batch=8):
    """A fixed causal softmax layer (H = 1, R = d = 8, layer-init seed 0) is the target. Each variant,
    with M complex modes (2M(R + d) real floats of state), is fitted to it with Adam from layer-init
    (seed s) on `batch` sequences; the error is measured on as many held-out sequences. Chapters 2-4's
    fixed approximations of the same softmax attention are evaluated on the held-out sequences."""
    rng = np.random.default_rng(11)
    teacher = idattn.layer_init("softmax", D, 1, R, d, 1, seed=0)
    x_train, x_test = rng.standard_normal((batch, N, D)), rng.standard_normal((batch, N, D))
    y_train = idattn.layer_forward(teacher, x_train, "softmax")
    y_test = idattn.layer_forward(teacher, x_test, "softmax")
    fitted = {v: np.zeros((len(ms), len(seeds), 2)) for v in variants}
    for v in variants:
        for i, M in enumerate(ms):
            for j, seed in enumerate(seeds):
                p, curve = adam_fit(v, idattn.layer_init(v, D, 1, R, d, M, seed=seed), x_train, y_train, steps)
                fitted[v][i, j] = curve[-1], rel(y_test, idattn.layer_forward(p, x_test, v)) ** 2
    # The teacher's own q, k (after RoPE), v: chapters 2-4 approximate its softmax attention.
    q = np.stack([rope(xx @ teacher["W_q"], 1) for xx in x_test])[:, None]
    k = np.stack([rope(xx @ teacher["W_k"], 1) for xx in x_test])[:, None]
    vv = np.stack([xx @ teacher["W_v"] for xx in x_test])[:, None]
    wo = teacher["W_o"]
    out = lambda o: o[:, 0] @ wo  # noqa: E731
    err = lambda o: rel(y_test, out(o)) ** 2  # noqa: E731
    baselines = {}
    fixed_rf = 16
    w16 = idattn.draw_feature_weights("positive", fixed_rf, R, seed=3)
    baselines["linear attention (ch. 2, R_f features)"] = [
        (rf * (d + 1), err(idattn.linear_attention(q, k, vv, "positive", idattn.draw_feature_weights("positive", rf, R, seed=3),
                                                    causal=True)))
        for rf in (2, 4, 8, 16, 32, 64)]
    baselines[f"LegS projection (ch. 3, R_f = {fixed_rf})"] = [
        (M * (fixed_rf + d + 1), err(idattn.interdomain_attention(q, k, vv, "positive", w16, "legs", M, causal=True)))
        for M in (1, 2, 4, 8, 16)]
    baselines[f"S4D at init (ch. 4, R_f = {fixed_rf})"] = [
        (2 * M * (fixed_rf + d + 1), err(idattn.ssm_attention(q, k, vv, "positive", w16, "s4d", "inv", M, 1.0 / N)))
        for M in (1, 2, 4, 8, 16)]
    prefix = np.cumsum(vv, axis=2) / np.arange(1, N + 1)[None, None, :, None]
    baselines["prefix mean"] = [(d + 1, err(prefix))]
    # How far from uniform the teacher's attention is (why the prefix mean is not already good).
    logits = np.einsum("bhtr,bhsr->bhts", q, k) / np.sqrt(R)
    logits = np.where(np.tril(np.ones((N, N), bool)), logits, -np.inf)
    pr = np.exp(logits - logits.max(-1, keepdims=True))
    pr /= pr.sum(-1, keepdims=True)
    ent = -(np.where(pr > 0, pr * np.log(np.where(pr > 0, pr, 1)), 0)).sum(-1)
    entropy_ratio = float((ent[..., 1:] / np.log(np.arange(2, N + 1))).mean())
    return {"ms": list(ms), "seeds": list(seeds), "steps": steps, "R": R, "d": d, "N": N, "batch": batch,
            "fitted": fitted,
            "baselines": baselines, "logit_std": float(np.std(logits[np.isfinite(logits)])),
            "entropy_ratio": entropy_ratio}


def plot_relaxation(ax, res):
    state = [2 * M * (res["R"] + res["d"]) for M in res["ms"]]
    for v, e in res["fitted"].items():
        for k, (what, style) in enumerate((("training sequences", "o-"), ("held-out", "o:"))):
            err = e[..., k]
            line = ax.errorbar(state, err.mean(1), yerr=[err.mean(1) - err.min(1), err.max(1) - err.mean(1)],
                               fmt=style, ms=4, capsize=2, mfc="none" if k else None,
                               color=None if k == 0 else line[0].get_color(),
                               label=f"learned '{v}', {what}")
    for name, pts in res["baselines"].items():
        xs, ys = zip(*pts)
        ax.plot(xs, ys, "s--" if len(pts) > 1 else "k*", ms=4, lw=0.8, label=name + " (held-out)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("real floats of state per head (complex counted as 2)")
    ax.set_ylabel("relative squared error vs the softmax layer")
    ax.set_title(f"fitting a causal softmax layer: {res['steps']} Adam steps, {res['batch']} sequences of "
                 f"N = {res['N']};\nmean and min-max over seeds {res['seeds']}; teacher logit std "
                 f"{res['logit_std']:.2f}, attention entropy {100 * res['entropy_ratio']:.0f}% of uniform",
                 fontsize=9)
    ax.legend(fontsize=6)


# ---- The main job -------------------------------------------------------------------------

def run(ctx):
    rng = ctx.rng(51)
    # eq:5.ssm (and every map of the full variant) against numpy.
    p = perturbed("full", 1)
    x = rng.standard_normal((2, 17, 6))
    y = idattn.layer_forward(p, x, "full")
    ctx.row("5.ssm", "full variant (gate on): C++ reference vs literal numpy, B=2 N=17 H=2 R=4 d=3 M=4",
            idattn.compare(np.stack([numpy_full_layer(p, xx) for xx in x]), y, tol=1e-12), "ref (float64)")
    for form, label, chunk in (("folded", "5.fold", 16), ("chunked", "5.1", 5)):
        ctx.row(label, f"full variant: {form} form (chunk {chunk}) vs the recurrence, N=17",
                idattn.compare(y, idattn.layer_forward(p, x, "full", form=form, chunk=chunk), tol=1e-13),
                "ref (float64)")
    ps = perturbed("softmax", 2, R=4, d=4, gate=False)
    ctx.row("5.softmax", "softmax variant vs chapter 1 per head (R = d = 4), N=17",
            idattn.compare(np.stack([numpy_softmax_layer(ps, xx) for xx in x]), idattn.layer_forward(ps, x, "softmax"),
                           tol=1e-12), "ref (float64)")
    for variant in ("full", "s4d", "softmax"):
        errs = gradient_check_errors([1e-4], variant=variant)
        worst = max(e[0] for e in errs.values())
        ctx.row("5.adjoint", f"{variant}: backward vs central differences (h = 1e-4), one direction per group, "
                f"worst group {worst:.1e}", {"rel_rms": worst, "threshold": 1e-6, "pass": worst <= 1e-6},
                "ref (float64)")
    errs = lambda_division_errors([0.5, 0.9], [8], variant="full")
    ctx.row("5.lambda-div", "Lambda-division backward (K = 8) vs stored, |Lambda| = 0.5 and 0.9",
            {"rel_rms": float(errs.max()), "threshold": 1e-10, "pass": bool(errs.max() <= 1e-10)}, "ref (float64)")
    ctx.skipped("5.1", "fast chunkwise kernel vs reference", "no CUDA kernel for chapter 5 yet")

    steps = np.logspace(-1, -12, 23)
    errs = gradient_check_errors(steps)
    for group, e in errs.items():
        ctx.log(f"gradient check, {group}: smallest error {e.min():.1e} at h = {steps[int(np.argmin(e))]:.1e}")
    fig, ax = plt.subplots(figsize=(6, 4.5), layout="constrained")
    plot_gradient_check(ax, steps, errs)
    ctx.figure(fig, "05-gradient-check", "the gradient check: central-difference error versus the step h per "
               "parameter group, the V of truncation (h^2) and round-off (u/h) (eq:5.adjoint)")
    plt.close(fig)

    rhos = np.logspace(-3, np.log10(0.95), 9 if ctx.quick else 17)
    Ks = [1, 2, 4, 8, 16]
    lerr = lambda_division_errors(rhos, Ks)
    for i, K in enumerate(Ks):
        ctx.log(f"Lambda-division, K = {K}: gradient error at |Lambda| = "
                + ", ".join(f"{r:.3g}: {e:.1e}" for r, e in zip(rhos, lerr[i])))
    fig, ax = plt.subplots(figsize=(6, 4.5), layout="constrained")
    plot_lambda_division(ax, rhos, Ks, lerr)
    ctx.figure(fig, "05-lambda-division", "the Lambda-division backward's error versus |Lambda| and the checkpoint "
               "interval K, with the bound of eq:5.lambda-err")
    plt.close(fig)

    ms = [1, 2, 4, 8] if ctx.quick else [1, 2, 4, 8, 16]
    seeds = [0, 1] if ctx.quick else [0, 1, 2]
    res = relaxation_experiment(ms, seeds, steps=100 if ctx.quick else 300, batch=8 if ctx.quick else 16,
                                variants=("full", "s4d") if ctx.quick else ("full", "dualkv", "s4d"))
    for v, e in res["fitted"].items():
        ctx.log(f"fitted '{v}': training error per M {dict(zip(ms, np.round(e[..., 0].mean(1), 4)))}, "
                f"held-out {dict(zip(ms, np.round(e[..., 1].mean(1), 4)))}")
    for name, pts in res["baselines"].items():
        ctx.log(f"{name}: {[(s, round(e, 4)) for s, e in pts]}")
    fig, ax = plt.subplots(figsize=(7, 5), layout="constrained")
    plot_relaxation(ax, res)
    ctx.figure(fig, "05-relaxation-vs-state", "the learned relaxation fitted to a causal softmax layer, error "
               "versus state size, against chapters 2-4's fixed approximations and the prefix mean")
    plt.close(fig)
