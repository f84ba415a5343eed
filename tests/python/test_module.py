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
