"""Interdomain Attention from Python: the project's references and fast kernels.

A thin layer over the compiled module ``_idattn`` (built by CMake into
``build/python``). Every function takes numpy arrays (float32 or float64) and
returns numpy arrays; the references compute in float64 whatever the input.

    import idattn
    o = idattn.softmax_attention(q, k, v, causal=True)              # float64 reference
    o32 = idattn.softmax_attention(q, k, v, causal=True, impl="fast")  # CUDA, float32
    idattn.compare(o, o32, baseline=idattn.softmax_attention(q, k, v, True, impl="naive32"))
"""
import functools
import inspect
import warnings

import numpy as np

import _idattn
from _idattn import IdattnError, device_status  # noqa: F401  (re-exported)


def _arrays(*names):
    """Accept anything numpy turns into an array of numbers (a list of lists, a tuple, a scalar
    row) for the named arguments, as the CLI accepts any .npy file; refuse the rest with a
    TypeError that names the argument, not pybind's list of signatures. float32 arrays pass
    through as they are (the C++ side keeps their dtype); other dtypes are refused there, by name."""
    def wrap(f):
        sig = inspect.signature(f)

        @functools.wraps(f)
        def checked(*args, **kwargs):
            bound = sig.bind(*args, **kwargs)
            for n in names:
                if n not in bound.arguments or isinstance(bound.arguments[n], np.ndarray):
                    continue
                value = bound.arguments[n]
                if value is None:
                    if sig.parameters[n].default is None:
                        continue  # an optional array left out
                    raise TypeError(f"{f.__name__}: {n} must be an array of numbers, got None")
                try:
                    bound.arguments[n] = np.asarray(value, dtype=np.float64)
                except (TypeError, ValueError) as e:
                    raise TypeError(f"{f.__name__}: {n} must be an array of numbers, got "
                                    f"{type(value).__name__} ({e})") from None
            return f(*bound.args, **bound.kwargs)
        return checked
    return wrap


def _result(run, full):
    for note in run["notes"]:
        warnings.warn(note, stacklevel=3)
    return run if full else run["out"]


@_arrays("q", "k", "v")
def softmax_attention(q, k, v, causal=False, impl="ref", full=False):
    """Softmax attention (P1), chapter 1. With full=True returns {'out', 'backend', 'notes'}."""
    return _result(_idattn.softmax_attention(q, k, v, causal, impl), full)


@_arrays("q", "k", "v")
def softmax_attention_online(q, k, v, causal=False, block=64, full=False):
    """The float64 online-softmax recurrence over key blocks (chapter 1, eq:1.online); one head (N, d)."""
    return _result(_idattn.softmax_attention_online(q, k, v, causal, block), full)


@_arrays("reference", "candidate", "baseline")
def compare(reference, candidate, baseline=None, tol=None):
    """The tolerance rule of the project; returns a dict with rel_rms, threshold, pass, report."""
    return _idattn.compare(reference, candidate, baseline, tol)


def has_device():
    return device_status()["available"]


# ---- Chapter 2: the kernel feature map ----------------------------------------

def draw_feature_weights(map, R, d, seed=0):
    """The random draw W (R, d) of a feature map (chapter 2, eq:2.1 to eq:2.3); (0, 0) for 'taylor'."""
    return _idattn.draw_feature_weights(map, R, d, seed)


@_arrays("x", "w")
def feature_map(x, map, w=None, impl="ref", full=False):
    """Features xi(x) (eq:P3), x (N, d) or (B, H, N, d) -> (..., N, R_f); w from draw_feature_weights."""
    return _result(_idattn.feature_map(x, map, w, impl), full)


@_arrays("q", "k", "v", "w")
def linear_attention(q, k, v, map, w=None, form="chunked", causal=False, chunk=64, impl="ref", full=False):
    """Linear attention (eq:P4) in the form 'quadratic', 'recurrent' or 'chunked' (eq:2.5)."""
    return _result(_idattn.linear_attention(q, k, v, map, w, form, causal, chunk, impl), full)


# ---- Chapter 3: the interdomain projection ------------------------------------

def basis_matrix(basis, M, N):
    """Phi (M, N) on N tokens: 'legs' (eq:3.1), 'gram' (eq:3.gram), 'dct' (eq:3.dct), or the complex
    'fourier' rows (eq:3.5, a complex array)."""
    phi = _idattn.basis_matrix(basis, M, N)
    return _complex(phi) if basis == "fourier" else phi


@_arrays("fk", "v")
def interdomain_project(fk, v, basis, M, impl="ref"):
    """The projections (eq:P6): returns (U, Gamma, eta) = (Phi F_k, Phi V, Phi 1); complex for 'fourier'."""
    run = _result(_idattn.interdomain_project(fk, v, basis, M, impl), True)
    out = (run["U"], run["Gamma"], run["eta"])
    return tuple(_complex(a) for a in out) if basis == "fourier" else out


@_arrays("q", "k", "v", "w")
def interdomain_attention(q, k, v, map="positive", w=None, basis="legs", M=32, causal=False, impl="ref", full=False):
    """Interdomain attention (eq:P9) from q, k, v with a chapter-2 feature map and draw w."""
    return _result(_idattn.interdomain_attention(q, k, v, map, w, basis, M, causal, impl), full)


@_arrays("fq", "fk", "v")
def interdomain_attention_features(fq, fk, v, basis, M, causal=False, impl="ref", full=False):
    """Interdomain attention (eq:P9) on given features F_q, F_k; 'fourier' = Hermitian readout (eq:3.5)."""
    return _result(_idattn.interdomain_attention_features(fq, fk, v, basis, M, causal, impl), full)


@_arrays("fq", "fk")
def interdomain_effective_weights(fq, fk, basis, M, causal=False):
    """The unnormalised effective weights W = (F_q F_k^T) P of eq:3.4, (Nq, N)."""
    return _idattn.interdomain_effective_weights(fq, fk, basis, M, causal)["out"]


# ---- Chapter 4: the SSM basis recurrence --------------------------------------
# Complex values come from the compiled module as real arrays with a trailing axis of 2.

def _complex(a):
    return a[..., 0] + 1j * a[..., 1] if a.dtype == "float64" else (a[..., 0] + 1j * a[..., 1]).astype("complex64")


def ssm_parameters(basis="s4d", init="inv", M=64, delta=0.01, L=64, alpha=0.0):
    """(Lambda, Bbar), complex (M,): S4D (eq:P11, eq:4.zoh) or the damped Fourier basis (eq:4.6)."""
    p = _idattn.ssm_parameters(basis, init, M, delta, L, alpha)
    return _complex(p["lambda"]), _complex(p["bbar"])


def ssm_impulse_response(N, basis="s4d", init="inv", M=64, delta=0.01, L=64, alpha=0.0):
    """The basis psi (N, M) complex, psi[tau, m] = Lambda_m^tau Bbar_m (eq:4.psi)."""
    return _complex(_idattn.ssm_impulse_response(N, basis, init, M, delta, L, alpha)["out"])


@_arrays("z")
def ssm_states(z, basis="s4d", init="inv", M=64, delta=0.01, L=64, alpha=0.0, form="recurrence", chunk=64,
               impl="ref", full=False):
    """The states (N, M, C) complex after every token of z (N, C), form 'recurrence' (eq:P11), 'explicit'
    (eq:4.3), 'fft' (eq:4.4) or 'chunked' (eq:4.5). complex128 (ref) or complex64 (naive32, fast)."""
    run = _result(_idattn.ssm_states(z, basis, init, M, delta, L, alpha, form, chunk, impl), True)
    run["out"] = _complex(run["out"])
    return run if full else run["out"]


@_arrays("z")
def legs_states(z, M, method="exact", substeps=1, full=False):
    """The HiPPO-LegS states c(t) (N, M, C): 'exact' (eq:4.1), 'euler' or 'bilinear' (eq:4.2)."""
    return _result(_idattn.legs_states(z, M, method, substeps), full)


@_arrays("q", "k", "v", "w")
def ssm_attention(q, k, v, map="positive", w=None, basis="s4d", init="inv", M=64, delta=0.01, L=64, alpha=0.0,
                  form="recurrence", chunk=64, impl="ref", full=False):
    """Causal interdomain attention over an SSM basis (eq:4.readout) from q, k, v with a feature map and draw w."""
    return _result(_idattn.ssm_attention(q, k, v, map, w, basis, init, M, delta, L, alpha, form, chunk, impl), full)


@_arrays("fq", "fk", "v")
def ssm_attention_features(fq, fk, v, basis="s4d", init="inv", M=64, delta=0.01, L=64, alpha=0.0,
                           form="recurrence", chunk=64, impl="ref", full=False):
    """Causal interdomain attention over an SSM basis (eq:4.readout) on given features F_q, F_k."""
    return _result(_idattn.ssm_attention_features(fq, fk, v, basis, init, M, delta, L, alpha, form, chunk, impl),
                   full)


# ---- Chapter 5: the learned layer ----------------------------------------------
# Parameters are dicts of numpy arrays named as in chapter 5's contract, plus 'heads' (int);
# complex parameters (B, C) carry a trailing axis of 2 (real, imaginary).

def layer_init(variant, D, H, R, d, M, seed=0, gate=False, rope=None):
    """The paper's initialisation (eq:5.init) of a variant: full, norope, dualkv, single, s4d or softmax."""
    return _idattn.layer_init(variant, D, H, R, d, M, seed, gate, rope)


@_arrays("x")
def layer_forward(params, x, variant, rope=None, rope_order="before-xi", form="recurrence", chunk=16, full=False):
    """The learned layer (chapter 5): y for x (N, D) or (B, N, D); form 'recurrence' (eq:5.ssm), 'folded'
    (eq:5.fold) or 'chunked' (eq:5.1). rope=None keeps the variant's default."""
    return _result(_idattn.layer_forward(params, x, variant, rope, rope_order, form, chunk), full)


@_arrays("x", "dy")
def layer_backward(params, x, dy, variant, rope=None, rope_order="before-xi", backward="stored", checkpoint=16,
                   full=False):
    """Gradients for the upstream dy = dL/dy: a dict with 'x' and every parameter name (eq:5.adjoint);
    backward 'stored' or 'lambda-division' with a checkpoint every `checkpoint` tokens (eq:5.lambda-div)."""
    run = _result(_idattn.layer_backward(params, x, dy, variant, rope, rope_order, backward, checkpoint), True)
    return run if full else run["grads"]


# ---- Chapter 6: decoding -------------------------------------------------------

class Decoder:
    """Decoding with chapter 5's layer (chapter 6): prefill(x, chunk) for a prompt (N, D) (eq:6.prefill),
    then step(x_t) per token (eq:6.step), from a state of fixed size (eq:6.state) or, for 'softmax', a
    growing KV cache (eq:6.cache). readout 'explicit' (C X_t) or 'folded' (G = C^H C), eq:6.cost."""

    def __init__(self, params, variant, rope=None, rope_order="before-xi", readout="explicit"):
        self._d = _idattn.Decoder(params, variant, rope, rope_order, readout)

    @_arrays("x")
    def prefill(self, x, chunk=64):
        y = self._d.prefill(x, chunk)
        for note in self._d.notes:
            warnings.warn(note, stacklevel=2)
        return y

    @_arrays("x")
    def step(self, x):
        return self._d.step(x)

    @property
    def position(self):
        return self._d.position

    @property
    def state_floats(self):
        return self._d.state_floats

    def state(self):
        """The state: 'position'; 'X' complex (H, M, R + d) and the convolution windows, or the KV cache."""
        s = self._d.state()
        if "X" in s:
            s["X"] = _complex(s["X"])
        return s


# ---- Chapter 8: Key-Value Means --------------------------------------------------

@_arrays("q", "k", "v", "g")
def kvm_attention(q, k, v, g=None, chunk=256, window_chunks=2, sinks=1, budget="fixed:256", rope_dims=0,
                  state_norm=True, gate_appends=False, tau_state=1.0, tau_window=1.0, form="prefill", full=False):
    """Key-Value Means (chapter 8): softmax over [state rows; block window] (eq:8.readout); budget 'fixed:R',
    'sqrt:F' or 'saturate:R' (eq:8.budget); form 'prefill' or 'decode' (the same outputs)."""
    return _result(_idattn.kvm_attention(q, k, v, g, chunk, window_chunks, sinks, budget, rope_dims, state_norm,
                                         gate_appends, tau_state, tau_window, form), full)
