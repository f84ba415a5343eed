#!/usr/bin/env python3
"""The Python module: results equal the references, errors become ValueError naming the tensor.

Run by CTest as python/module (PYTHONPATH=build/python). Plain asserts; prints
'N passed, N failed' and exits non-zero on any failure.
"""
import sys
import traceback
import warnings

import numpy as np

import idattn

TESTS = []


def test(f):
    TESTS.append(f)
    return f


@test
def softmax_matches_numpy_single_and_batched():  # eq:P1
    rng = np.random.default_rng()
    q, k, v = (rng.standard_normal((2, 3, 17, 8)) for _ in range(3))
    o = idattn.softmax_attention(q, k, v, causal=True)
    assert o.shape == q.shape and o.dtype == np.float64
    s = np.einsum("bhid,bhjd->bhij", q, k) / np.sqrt(8)
    s = np.where(np.tril(np.ones((17, 17), bool)), s, -np.inf)
    w = np.exp(s - s.max(-1, keepdims=True))
    want = np.einsum("bhij,bhjd->bhid", w / w.sum(-1, keepdims=True), v)
    assert np.max(np.abs(o - want)) < 1e-13
    o2 = idattn.softmax_attention(q[0, 0], k[0, 0], v[0, 0], causal=True)
    assert o2.shape == (17, 8) and np.max(np.abs(o2 - want[0, 0])) < 1e-13


@test
def naive32_is_float32_and_close():
    rng = np.random.default_rng()
    q, k, v = (rng.standard_normal((33, 16)).astype(np.float32) for _ in range(3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = idattn.softmax_attention(q, k, v)
        naive = idattn.softmax_attention(q, k, v, impl="naive32")
    assert naive.dtype == np.float32
    assert idattn.compare(ref, naive, tol=1e-5)["pass"]


@test
def fast_falls_back_with_a_note_or_runs():
    rng = np.random.default_rng()
    q = rng.standard_normal((9, 4))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        run = idattn.softmax_attention(q, q, q, impl="fast", full=True)
    if idattn.has_device():
        assert run["backend"].startswith("fast")
    else:
        assert run["backend"].startswith("ref")
        assert any("unavailable" in str(x.message) for x in w)


@test
def errors_name_the_tensor():
    q = np.ones((4, 8))
    cases = [((q, np.ones((5, 6)), np.ones((5, 6))), "k has shape (5, 6)"),
             ((q, np.ones((5, 8), np.int64), np.ones((5, 8))), "k must be a float32 or float64 array"),
             ((np.full((4, 8), np.nan), np.ones((5, 8)), np.ones((5, 8))), "q must be finite"),
             ((np.ones((0, 8)), np.ones((5, 8)), np.ones((5, 8))), "q has shape (0, 8)")]
    for args, expect in cases:
        try:
            idattn.softmax_attention(*args)
        except ValueError as e:
            assert expect in str(e), f"{expect!r} not in {e}"
        else:
            raise AssertionError(f"no error for {expect}")
    try:
        idattn.softmax_attention(q, q, q, impl="gpu")
    except ValueError as e:
        assert "'gpu'" in str(e)
    else:
        raise AssertionError("no error for impl='gpu'")


@test
def compare_rule():
    ref = np.array([3.0, 4.0])
    c = idattn.compare(ref, np.array([3.0, 4.09]), baseline=np.array([3.0, 4.05]))
    assert c["pass"] and abs(c["baseline_rel_rms"] - 0.01) < 1e-12
    assert not idattn.compare(ref, np.array([3.0, 4.2]), baseline=np.array([3.0, 4.05]))["pass"]
    # The CLI's rules and wording for tol (reliability review P20-P23).
    assert idattn.compare(ref, np.array([3.0, 4.0001]), tol="1e-3")["pass"]
    assert idattn.compare(ref, np.array([3.0, 4.0001]), tol=1)["pass"]
    _expect_error(lambda: idattn.compare(ref, ref, tol=-1.0), "tol must be a finite number >= 0")
    _expect_error(lambda: idattn.compare(ref, ref, tol="1e-3abc"), "got '1e-3abc'")
    _expect_error(lambda: idattn.compare(ref, ref, tol=[1]), "got a list")
    _expect_error(lambda: idattn.compare(ref, ref, baseline=ref, tol=1e-3), "not both")
    _expect_error(lambda: idattn.compare(np.array([3.0, np.nan]), ref, tol=1e-3), "the reference is not finite")


# ---- Chapter 2: the kernel feature map ----------------------------------------


@test
def feature_maps_match_numpy():  # eq:P3 eq:2.1 eq:2.2 eq:2.3 eq:2.4
    rng = np.random.default_rng()
    d, R = 8, 16
    x = rng.standard_normal((2, 3, 11, d)) * 0.5
    xt = x / d ** 0.25
    w = idattn.draw_feature_weights("positive", R, d, seed=3)
    assert w.shape == (R, d) and w.dtype == np.float64
    assert np.array_equal(w, idattn.draw_feature_weights("positive", R, d, seed=3))
    f = idattn.feature_map(x, "positive", w)
    want = np.exp(xt @ w.T - 0.5 * (xt ** 2).sum(-1, keepdims=True)) / np.sqrt(R)
    assert f.shape == (2, 3, 11, R) and np.max(np.abs(f - want) / want) < 1e-12
    f = idattn.feature_map(x, "rff", w)
    a = xt @ w.T
    mag = np.exp((x ** 2).sum(-1, keepdims=True) / (2 * np.sqrt(d))) / np.sqrt(R)
    want = np.concatenate([mag * np.cos(a), mag * np.sin(a)], axis=-1)
    assert f.shape == (2, 3, 11, 2 * R) and np.max(np.abs(f - want)) < 1e-12
    wo = idattn.draw_feature_weights("orthogonal", R, d, seed=4)
    u = wo[:d] / np.linalg.norm(wo[:d], axis=1, keepdims=True)  # one block: orthonormal directions
    assert np.max(np.abs(u @ u.T - np.eye(d))) < 1e-12
    assert idattn.draw_feature_weights("taylor", R, d).shape == (0, 0)
    ft = idattn.feature_map(x[0, 0], "taylor")
    t = x[0, 0] @ x[0, 0].T / np.sqrt(d)
    assert ft.shape == (11, 1 + d + d * d)
    assert np.max(np.abs(ft @ ft.T - (1 + t + t * t / 2))) < 1e-12


@test
def linear_attention_three_forms_agree():  # eq:2.5 eq:P4 eq:2.chunk eq:2.recurrence
    rng = np.random.default_rng()
    d = 8
    q, k, v = (rng.standard_normal((2, 2, 37, d)) * s for s in (0.5, 0.5, 1.0))
    w = idattn.draw_feature_weights("positive", 32, d, seed=5)
    fq, fk = idattn.feature_map(q, "positive", w), idattn.feature_map(k, "positive", w)
    for causal in (False, True):
        a = np.einsum("bhir,bhjr->bhij", fq, fk)
        if causal:
            a = a * np.tril(np.ones((37, 37)))
        want = np.einsum("bhij,bhjd->bhid", a, v) / a.sum(-1, keepdims=True)
        for form in ("quadratic", "recurrent", "chunked"):
            o = idattn.linear_attention(q, k, v, "positive", w, form=form, causal=causal, chunk=5)
            assert o.shape == q.shape and np.max(np.abs(o - want)) < 1e-12, (form, causal)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            naive = idattn.linear_attention(q, k, v, "positive", w, causal=causal, chunk=5, impl="naive32")
        assert naive.dtype == np.float32 and idattn.compare(want, naive, tol=1e-5)["pass"]


@test
def linear_attention_fast_runs_or_falls_back():  # eq:2.chunk
    rng = np.random.default_rng()
    q, k, v = (rng.standard_normal((1, 2, 70, 16)).astype(np.float32) * s for s in (0.5, 0.5, 1.0))
    w = idattn.draw_feature_weights("orthogonal", 24, 16, seed=6).astype(np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ref = idattn.linear_attention(q, k, v, "orthogonal", w, causal=True, chunk=16)
        naive = idattn.linear_attention(q, k, v, "orthogonal", w, causal=True, chunk=16, impl="naive32")
        run = idattn.linear_attention(q, k, v, "orthogonal", w, causal=True, chunk=16, impl="fast", full=True)
        frun = idattn.feature_map(q, "orthogonal", w, impl="fast", full=True)
    if idattn.has_device():
        assert run["backend"].startswith("fast") and frun["backend"].startswith("fast")
        assert idattn.compare(ref, run["out"], baseline=naive)["pass"]
    else:
        assert run["backend"].startswith("ref") and frun["backend"].startswith("ref")
        assert any("unavailable" in str(x.message) for x in caught)
        assert np.max(np.abs(run["out"] - ref)) == 0


@test
def chapter2_errors_name_the_tensor():
    x = np.ones((5, 8))
    w = np.ones((4, 8))
    cases = [(lambda: idattn.feature_map(x, "positive", np.ones((4, 7))), "W has shape (4, 7)"),
             (lambda: idattn.feature_map(x, "positive"), "W has shape (0, 0)"),
             (lambda: idattn.feature_map(x, "taylor", w), "takes no W"),
             (lambda: idattn.feature_map(x, "gauss", w), "'gauss'"),
             (lambda: idattn.draw_feature_weights("positive", 0, 8), "at least 1"),
             (lambda: idattn.linear_attention(x, x, x, "positive", w, chunk=0), "chunk size must be at least 1"),
             (lambda: idattn.linear_attention(x, x, x, "positive", w, form="bogus"), "'bogus'"),
             (lambda: idattn.linear_attention(x, np.ones((5, 6)), x, "positive", w), "k has shape (5, 6)"),
             (lambda: idattn.linear_attention(np.ones((6, 8)), x, x, "positive", w, causal=True), "Nq"),
             (lambda: idattn.linear_attention(x, x, np.full((5, 8), np.nan), "positive", w), "v must be finite")]
    for fn, expect in cases:
        try:
            fn()
        except ValueError as e:
            assert expect in str(e), f"{expect!r} not in {e}"
        else:
            raise AssertionError(f"no error for {expect}")


def _expect_error(fn, expect):
    try:
        fn()
    except ValueError as e:
        assert expect in str(e), f"{expect!r} not in {e}"
    else:
        raise AssertionError(f"no error for {expect}")


@test
def chapter3_bases_are_orthonormal_and_parseval_holds():  # eq:3.gram eq:3.dct eq:3.3 eq:P9
    rng = np.random.default_rng(3)
    n = 37
    for basis in ("gram", "dct"):
        phi = idattn.basis_matrix(basis, n, n)
        assert phi.shape == (n, n)
        assert np.abs(phi @ phi.T - np.eye(n)).max() < 1e-12, basis
    fq = rng.random((11, 9)) + 0.1
    fk = rng.random((n, 9)) + 0.1
    v = rng.standard_normal((n, 5))
    w = fq @ fk.T
    p4 = (w @ v) / w.sum(axis=1, keepdims=True)
    for basis in ("gram", "dct", "fourier"):  # M = N: exact (eq:3.3, eq:3.5)
        o = idattn.interdomain_attention_features(fq, fk, v, basis, n)
        assert np.abs(o - p4).max() < 1e-12 * np.abs(p4).max(), basis


@test
def chapter3_projection_and_effective_matrix():  # eq:P6 eq:3.4
    rng = np.random.default_rng(4)
    n, M = 29, 6
    fq = rng.random((7, 4)) + 0.1
    fk = rng.random((n, 4)) + 0.1
    v = rng.standard_normal((n, 3))
    U, G, eta = idattn.interdomain_project(fk, v, "legs", M)
    phi = idattn.basis_matrix("legs", M, n)
    assert np.abs(U - phi @ fk).max() < 1e-13 and np.abs(G - phi @ v).max() < 1e-13
    assert np.abs(eta - phi.sum(axis=1)).max() < 1e-13
    o = idattn.interdomain_attention_features(fq, fk, v, "legs", M)
    w = idattn.interdomain_effective_weights(fq, fk, "legs", M)
    assert np.abs(o - (w @ v) / w.sum(axis=1, keepdims=True)).max() < 1e-12
    # The complex Fourier rows (eq:3.5): complex U, Gamma, eta, one convention with chapter 4.
    phi = idattn.basis_matrix("fourier", M, n)
    assert phi.dtype == np.complex128 and phi.shape == (M, n)
    U, G, eta = idattn.interdomain_project(fk, v, "fourier", M)
    assert U.dtype == np.complex128 and U.shape == (M, 4) and G.shape == (M, 3) and eta.shape == (M,)
    assert np.abs(U - phi @ fk).max() < 1e-13 and np.abs(G - phi @ v).max() < 1e-13
    assert np.abs(eta - phi.sum(axis=1)).max() < 1e-13


@test
def chapter3_errors_name_the_problem():
    fk = np.ones((8, 4))
    _expect_error(lambda: idattn.basis_matrix("gram", 9, 8), "M = 9")
    _expect_error(lambda: idattn.basis_matrix("legs", 0, 8), "M")
    _expect_error(lambda: idattn.basis_matrix("hippo", 2, 8), "'hippo'")
    _expect_error(lambda: idattn.interdomain_project(fk, np.ones((7, 4)), "legs", 2), "(7, 4)")


@test
def chapter4_forms_agree_and_match_the_impulse_response():  # eq:P11 eq:4.psi eq:4.3 eq:4.4 eq:4.5
    rng = np.random.default_rng(5)
    z = rng.standard_normal((23, 3))
    x = idattn.ssm_states(z, M=8, delta=0.05)
    assert x.dtype == np.complex128 and x.shape == (23, 8, 3)
    for form in ("explicit", "fft", "chunked"):
        y = idattn.ssm_states(z, M=8, delta=0.05, form=form, chunk=5)
        assert np.abs(y - x).max() < 1e-12 * np.abs(x).max(), form
    psi = idattn.ssm_impulse_response(23, M=8, delta=0.05)
    direct = np.einsum("tsm,sc->tmc", np.array([[psi[t - s] if s <= t else np.zeros(8) for s in range(23)]
                                                 for t in range(23)]), z)
    assert np.abs(direct - x).max() < 1e-12 * np.abs(x).max()


@test
def chapter4_legs_exact_equals_chapter3_projection():  # eq:4.1 eq:4.scale eq:3.1
    rng = np.random.default_rng(6)
    z = rng.standard_normal((12, 2))
    c = idattn.legs_states(z, 6)
    for t in (1, 5, 12):
        u = idattn.basis_matrix("legs", 6, t) @ z[:t]
        assert np.abs(np.sqrt(t) * c[t - 1] - u).max() < 1e-12 * np.abs(u).max(), t


@test
def chapter4_damped_fourier_is_decayed_linear_attention():  # eq:4.6
    rng = np.random.default_rng(7)
    n, alpha = 16, 0.1
    fq = rng.random((n, 5)) + 0.1
    fk = rng.random((n, 5)) + 0.1
    v = rng.standard_normal((n, 3))
    o = idattn.ssm_attention_features(fq, fk, v, basis="fourier", L=n, alpha=alpha)
    t = np.arange(n)
    w = np.tril(fq @ fk.T * np.exp(-2 * alpha * (t[:, None] - t[None, :])))
    assert np.abs(o - (w @ v) / w.sum(axis=1, keepdims=True)).max() < 1e-12


@test
def chapter4_errors_name_the_problem():
    z = np.ones((6, 2))
    _expect_error(lambda: idattn.ssm_states(z, M=4, delta=-1.0), "Delta")
    _expect_error(lambda: idattn.ssm_states(np.ones((2, 3, 4)), M=4), "rank")
    _expect_error(lambda: idattn.ssm_states(z, M=4, form="chunked", chunk=0), "chunk")
    _expect_error(lambda: idattn.ssm_states(z, basis="hippo"), "--basis")


@test
def chapter5_layer_forms_and_gradients():  # eq:5.init eq:5.ssm eq:5.fold eq:5.1 eq:5.adjoint eq:5.lambda-div
    rng = np.random.default_rng(5)
    for variant in ("full", "norope", "dualkv", "single", "s4d", "softmax"):
        p = idattn.layer_init(variant, D=6, H=2, R=4, d=3, M=5, seed=1, gate=True)
        assert isinstance(p["heads"], int) and p["heads"] == 2
        x = rng.standard_normal((2, 11, 6))
        y = idattn.layer_forward(p, x, variant)
        assert y.shape == x.shape and y.dtype == np.float64
        assert np.array_equal(idattn.layer_forward(p, x[0], variant), y[0])  # (N, D) is one sequence
        for form in ("folded", "chunked"):
            assert np.abs(idattn.layer_forward(p, x, variant, form=form, chunk=4) - y).max() <= 1e-13 * np.abs(y).max()
        dy = rng.standard_normal(x.shape)
        g = idattn.layer_backward(p, x, dy, variant)
        assert set(g) == (set(p) - {"heads"}) | {"x"}
        assert all(g[n].shape == np.shape(p[n]) for n in g if n != "x") and g["x"].shape == x.shape
        # One directional central difference through x.
        u = rng.standard_normal(x.shape)
        h = 1e-5
        fd = ((idattn.layer_forward(p, x + h * u, variant) - idattn.layer_forward(p, x - h * u, variant)) * dy).sum()
        assert abs(fd / (2 * h) - (g["x"] * u).sum()) <= 1e-7 * abs((g["x"] * u).sum()), variant
        if variant != "softmax":
            gd = idattn.layer_backward(p, x, dy, variant, backward="lambda-division", checkpoint=3)
            assert all(np.abs(gd[n] - g[n]).max() <= 1e-10 * (1 + np.abs(g[n]).max()) for n in g), variant
    p32 = {n: (v if n == "heads" else v.astype(np.float32)) for n, v in idattn.layer_init("s4d", 6, 1, 2, 2, 3).items()}
    run = idattn.layer_forward(p32, np.ones((4, 6), np.float32), "s4d", full=True)
    assert run["out"].dtype == np.float64 and any("promoted exactly to float64" in n for n in run["notes"])


@test
def chapter5_errors_name_the_array():
    p = idattn.layer_init("full", D=6, H=2, R=4, d=3, M=5)
    x = np.ones((3, 6))
    _expect_error(lambda: idattn.layer_forward({k: v for k, v in p.items() if k != "C"}, x, "full"), "'C' is missing")
    _expect_error(lambda: idattn.layer_forward({**p, "extra": np.ones(2)}, x, "full"), "'extra' is not used")
    _expect_error(lambda: idattn.layer_forward({**p, "B": np.ones((2, 5))}, x, "full"), "'B' has shape (2, 5)")
    _expect_error(lambda: idattn.layer_forward({**p, "W_o": p["W_o"] * np.nan}, x, "full"), "'W_o'")
    _expect_error(lambda: idattn.layer_forward({**p, "heads": 0}, x, "full"), "'heads' must be an integer >= 1")
    _expect_error(lambda: idattn.layer_forward({k: v for k, v in p.items() if k != "heads"}, x, "full"), "'heads'")
    _expect_error(lambda: idattn.layer_forward(p, np.ones((3, 5)), "full"), "x has shape (3, 5) but expected (N, 6)")
    _expect_error(lambda: idattn.layer_forward(p, x, "fast"), "expected one of full, norope")
    _expect_error(lambda: idattn.layer_backward(p, x, np.ones((2, 6)), "full"), "dy has shape (2, 6)")
    _expect_error(lambda: idattn.layer_init("full", 6, 2, 3, 3, 5), "R = 3 is odd")
    _expect_error(lambda: idattn.layer_init("full", 6, 2, 4, 3, 0), "M must be >= 1")


@test
def chapter6_decoder_equals_the_parallel_forward():  # eq:6.step eq:6.prefill eq:6.state eq:6.cache
    rng = np.random.default_rng(6)
    for variant in ("full", "s4d", "softmax"):
        p = idattn.layer_init(variant, D=6, H=2, R=4, d=3, M=5, seed=2)
        x = rng.standard_normal((15, 6))
        y = idattn.layer_forward(p, x, variant)
        for readout in ("explicit", "folded"):
            dec = idattn.Decoder(p, variant, readout=readout)
            out = [dec.prefill(x[:5], chunk=2)] + [dec.step(x[t])[None] for t in range(5, 15)]
            assert np.abs(np.concatenate(out) - y).max() <= 1e-12 * np.abs(y).max(), (variant, readout)
            assert dec.position == 15
            s = dec.state()
            assert s["position"] == 15
            if variant == "softmax":
                assert s["k_cache"].shape == (15, 8) and dec.state_floats == 15 * 2 * (4 + 3)
            else:
                assert s["X"].shape == (2, 5, 7) and s["X"].dtype == np.complex128
    dec = idattn.Decoder(idattn.layer_init("s4d", 6, 2, 4, 3, 5), "s4d")
    _expect_error(lambda: dec.step(np.ones(7)), "x has shape (1, 7) but expected (n, 6)")
    _expect_error(lambda: idattn.Decoder(p, "full"), "the parameter array")
    _expect_error(lambda: idattn.Decoder(p, "softmax", readout="sideways"), "unknown readout 'sideways'")


@test
def array_likes_are_accepted_and_the_rest_is_a_type_error_naming_the_argument():
    lists = [[1.0, 2.0], [3.0, 4.0]]
    a = np.array(lists)
    assert np.array_equal(idattn.softmax_attention(lists, lists, lists), idattn.softmax_attention(a, a, a))
    for bad, what in ((None, "got None"), ("abc", "got str"), ([[1.0, 2.0], [3.0]], "got list")):
        try:
            idattn.softmax_attention(bad, a, a)
        except TypeError as e:
            assert "softmax_attention: q must be an array of numbers" in str(e) and what in str(e), e
        else:
            raise AssertionError(f"no TypeError for {bad!r}")
    try:
        idattn.ssm_states(z=None)
    except TypeError as e:
        assert "ssm_states: z must be an array of numbers, got None" in str(e), e
    # Other dtypes are refused by name on the C++ side, with the CLI's wording.
    _expect_error(lambda: idattn.softmax_attention(a.astype(np.int64), a, a), "q must be a float32 or float64 array")
    assert idattn.feature_map(a, "taylor").shape[0] == 2  # w=None is an optional array, left out


@test
def chapter8_kvm_is_softmax_when_nothing_is_merged():  # eq:8.window eq:8.readout eq:8.budget
    rng = np.random.default_rng(8)
    q, k, v = (0.7 * rng.standard_normal((37, 6)) for _ in range(3))
    exact = idattn.softmax_attention(q, k, v, causal=True)
    y = idattn.kvm_attention(q, k, v, chunk=4, budget="fixed:64", state_norm=False)
    assert np.abs(y - exact).max() <= 1e-12 * np.abs(exact).max()
    g = rng.uniform(0.5, 2.0, 37)
    a = idattn.kvm_attention(q, k, v, g, chunk=4, budget="saturate:6", rope_dims=2)
    b = idattn.kvm_attention(q, k, v, g, chunk=4, budget="saturate:6", rope_dims=2, form="decode")
    assert np.abs(a - b).max() <= 1e-12 * np.abs(a).max()
    _expect_error(lambda: idattn.kvm_attention(q, k, v, budget="many"), "expected fixed:R, sqrt:F or saturate:R")
    _expect_error(lambda: idattn.kvm_attention(q, k, v, g[:5]), "merge gates g have shape (5,)")


@test
def absurd_sizes_raise_value_error_naming_the_argument():
    # The reliability review's interpreter crashes (SIGSEGV) and allocator texts:
    # now a ValueError naming the count and the memory it would need.
    huge = 2**62
    z = np.ones((6, 2))
    _expect_error(lambda: idattn.draw_feature_weights("positive", huge, 4), f"R = {huge} random frequencies needs")
    _expect_error(lambda: idattn.legs_states(z, huge), f"M = {huge}")
    _expect_error(lambda: idattn.ssm_impulse_response(huge, M=4), f"N = {huge} lags")
    _expect_error(lambda: idattn.ssm_parameters(M=huge), f"M = {huge} states")
    _expect_error(lambda: idattn.basis_matrix("legs", huge, 8), f"M = {huge} basis functions")
    _expect_error(lambda: idattn.legs_states(z, 4, "euler", 10**12), "substeps = 1000000000000")


@test
def overflowing_intermediates_raise_value_error():
    q = np.random.default_rng(0).standard_normal((8, 4))
    _expect_error(lambda: idattn.softmax_attention(q * 1e300, q * 1e300, q), "the output is not finite")


def main():
    passed = failed = 0
    for t in TESTS:
        try:
            t()
            passed += 1
            print(f"ok   {t.__name__}")
        except Exception:  # noqa: BLE001 - report every failure
            failed += 1
            print(f"FAIL {t.__name__}")
            traceback.print_exc()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
