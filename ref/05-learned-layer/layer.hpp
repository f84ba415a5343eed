// Chapter 5, exact reference: the learned relaxation the paper trains, (P10)-(P13)
// and Figure 3, forward and backward, in float64 and complex<double>. The
// function, the parameter names and shapes and the initialisation are fixed in
// chapters/05-learned-layer.md ("The parameters", section 5.1), with the derivation.
//
// Three files, one per level of the layer:
//   layer_maps.cpp    the token-wise maps around the recurrence, each with its
//                     hand-written backward: projections, short convolution
//                     (eq:5.conv), RoPE (eq:5.rope), the feature map (eq:P10),
//                     N+b (eq:P12), the gate and W_o (eq:5.out)
//   layer_core.cpp    one head's SSM core: the recurrence and readout (eq:5.ssm,
//                     eq:5.C, eq:P13), the G-folded readout (eq:5.fold), the
//                     chunkwise two-pass form (eq:5.1); the backward with all
//                     states stored (eq:5.adjoint) and with Lambda-division and
//                     checkpoints (eq:5.lambda-div)
//   layer.cpp         the variants of the ablation cube assembled from both,
//                     the softmax baseline (eq:5.softmax), parameters, checks
//                     and initialisation (eq:5.init)
//
// Conventions. Tokens t = 0..N-1; channel c of an (N, H*w) array belongs to
// head c / w. A complex parameter is stored with a trailing axis of 2 (real,
// imaginary) and its gradient is (dL/dRe, dL/dIm). Inside the core, the
// gradient of a real loss L with respect to a complex w is the complex number
// g_w = dL/dRe w + i dL/dIm w, so that dL = Re(conj(g_w) dw).
#pragma once

#include <complex>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>
#include <xtensor/xtensor.hpp>

namespace idattn::ref {

using LMat = xt::xtensor<double, 2>;
using CVec = xt::xtensor<std::complex<double>, 1>;
using CMat = xt::xtensor<std::complex<double>, 2>;
using CStates = xt::xtensor<std::complex<double>, 3>;

// ---- The cells of the ablation cube (chapter 5's contract) ----------------------------
enum class LayerVariant {
    Full,     // Figure 3a: q, k, v paths, query-conditioned readout
    NoRope,   // full without RoPE
    DualKv,   // Figure 3b: k, v paths, readout with a learned vector c_read (no query)
    Single,   // Figure 3c: q path and generic a, b paths (no feature map on a)
    S4d,      // Figure 3d: a, b paths, readout with c_read, no RoPE
    Softmax,  // the baseline: causal softmax attention with RoPE
};
std::string layer_variant_name(LayerVariant v);
std::vector<std::string> layer_variant_names();
bool layer_default_rope(LayerVariant v);  // on except for norope and s4d

// Named float64 arrays: a parameter set, or the gradients of one.
using Arrays = std::map<std::string, xt::xarray<double>>;

struct LayerParams {
    std::size_t heads = 0;  // H (the file's 0-d int64 `heads`)
    Arrays arrays;          // every name of layer_param_names, nothing else
};

// The arrays a variant uses, in the order of chapter 5's parameter table; with the
// gate W_g when gate is set.
std::vector<std::string> layer_param_names(LayerVariant v, bool gate);

struct LayerDims {
    std::size_t D = 0, H = 0, R = 0, d = 0, M = 0;  // M = 0 for softmax
    bool gate = false;
};

// Throws idattn::Error, prefixed with `what` and naming the array, unless the
// parameters are exactly the variant's (a missing or an extra array is named),
// every shape agrees with D, H and the widths read from W_k/W_a and W_v/W_b,
// every value is finite, |Lambda_m| < 1 for every mode (Delta A neither
// overflows nor underflows to 0), and R is even when RoPE is on.
LayerDims check_layer_params(const std::string& what, LayerVariant v, const LayerParams& p, bool rope);

struct LayerInitSpec {
    std::size_t D = 0, H = 0, R = 0, d = 0, M = 0;  // M is ignored for softmax
    std::uint64_t seed = 0;
    bool gate = false;
    bool rope = true;  // R must be even only where RoPE is on
};
// The paper's initialisation (eq:5.init): W normal with std 1/sqrt(fan_in),
// conv uniform in [-1/2, 1/2], g = 1, b = 0, log Delta uniform in
// [log 1e-3, log 1e-1], S4D-Inv with state size 2M, B = (Lambda - 1)/A, C = I,
// c_read = 1/sqrt(R). Deterministic in the seed.
LayerParams layer_init(LayerVariant v, const LayerInitSpec& spec);

// ---- Options --------------------------------------------------------------------
enum class LayerForm {
    Recurrence,  // eq:5.ssm, eq:5.C, eq:P13: per token, the explicit readout C X_t
    Folded,      // eq:5.fold: the same recurrence, readout through G = C^H C
    Chunked,     // eq:5.1: chunkwise two-pass form (folded readout)
};
std::string layer_form_name(LayerForm f);

enum class LayerBackward {
    Stored,          // every state kept from the forward pass
    LambdaDivision,  // eq:5.lambda-div: checkpoints every K tokens, states between recovered by dividing by Lambda
};
std::string layer_backward_name(LayerBackward b);

// Where RoPE sits on a path that has the feature map: Figure 3 draws the short
// convolution, then RoPE, then xi (the default); the other order rotates the
// features themselves (xi, then RoPE).
enum class RopeOrder { BeforeFeatureMap, AfterFeatureMap };
std::string rope_order_name(RopeOrder o);

struct LayerOptions {
    bool rope = true;  // set it with layer_default_rope(variant) unless the user overrides it
    RopeOrder rope_order = RopeOrder::BeforeFeatureMap;
    LayerForm form = LayerForm::Recurrence;
    std::size_t chunk = 16;       // tokens per chunk (Chunked), >= 1
    LayerBackward backward = LayerBackward::Stored;
    std::size_t checkpoint = 16;  // tokens per checkpoint segment (LambdaDivision), >= 1
};

// ---- The layer, x (B, N, D) -> y (B, N, D) --------------------------------------
xt::xtensor<double, 3> layer_forward(LayerVariant v, const LayerParams& p, const xt::xtensor<double, 3>& x,
                                     const LayerOptions& opt);

struct LayerGrads {
    xt::xtensor<double, 3> dx;  // dL/dx (B, N, D)
    Arrays params;              // dL/dp, one array per parameter name, same shapes
};
// The backward for the upstream dy = dL/dy (B, N, D); parameter gradients are
// summed over the batch.
LayerGrads layer_backward(LayerVariant v, const LayerParams& p, const xt::xtensor<double, 3>& x,
                          const xt::xtensor<double, 3>& dy, const LayerOptions& opt);

// ---- One head's SSM core (exposed so that each form can be tested alone) --------
struct CoreParams {
    CVec lambda;  // (M,) Lambda = exp(Delta A)
    CVec b;       // (M,) B
    CMat c;       // (M, M) C
};
// Lambda, B and C of head h from the layer's arrays (eq:5.ssm): Delta = exp(log_dt),
// A = -exp(log_A_real) + i A_imag.
CoreParams core_params(const LayerParams& p, std::size_t h);

// f (N, R): the query features xi(q_t) (or c_read in every row); z (N, R + d):
// [k~_t, v~_t]. Returns o (N, d). R is read from f.
LMat core_forward_recurrence(const CoreParams& cp, const LMat& f, const LMat& z);  // eq:5.ssm, eq:5.C, eq:P13
LMat core_forward_folded(const CoreParams& cp, const LMat& f, const LMat& z);      // eq:5.fold
LMat core_forward_chunked(const CoreParams& cp, const LMat& f, const LMat& z, std::size_t chunk);  // eq:5.1
LMat core_forward(const CoreParams& cp, const LMat& f, const LMat& z, const LayerOptions& opt);
// G = C^H C (M, M), Hermitian: the folded readout's matrix (eq:5.fold).
CMat fold_readout(const CMat& c);
// The core over a run of tokens that continues from the state X (M, R + d), which
// it leaves at the run's last state (eq:5.ssm): the explicit readout (eq:5.C,
// eq:P13) when g is null, else the folded one (eq:5.fold) with g = fold_readout(C).
// Chapter 6's decode step is a run of one.
LMat core_forward_from(const CoreParams& cp, const LMat& f, const LMat& z, CMat& X, const CMat* g);

// The states X_t (N, M, R + d) of eq:5.ssm, every t.
CStates core_states(const CoreParams& cp, const LMat& z);
// The same states as the Lambda-division backward sees them (eq:5.lambda-div):
// the forward keeps X_t only at t = K-1, 2K-1, ... and N-1; the states between
// are recovered walking backwards, X_{t-1} = (X_t - B z_t^T) / Lambda.
CStates core_states_lambda_division(const CoreParams& cp, const LMat& z, std::size_t checkpoint);

struct CoreGrads {
    LMat df;       // (N, R)
    LMat dz;       // (N, R + d)
    CVec dlambda;  // (M,)
    CVec db;       // (M,)
    CMat dc;       // (M, M)
};
// The backward of core_forward_recurrence for do = dL/do (N, d): the adjoint
// recurrence (eq:5.adjoint) with the states stored or recovered by
// Lambda-division (opt.backward, opt.checkpoint).
CoreGrads core_backward(const CoreParams& cp, const LMat& f, const LMat& z, const LMat& dout,
                        const LayerOptions& opt);

}  // namespace idattn::ref
