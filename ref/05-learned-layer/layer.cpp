// Chapter 5: the learned layer assembled - each cell of the ablation cube as
// paths of token-wise maps (layer_maps.cpp) feeding one SSM core per head
// (layer_core.cpp), the softmax baseline (eq:5.softmax), and the backward of
// the whole layer by walking the same steps in reverse (chapters/05-learned-layer.md).
#include <cmath>
#include <optional>

#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xview.hpp>

#include "core/error.hpp"
#include "core/validate.hpp"
#include "ref/05-learned-layer/layer.hpp"
#include "ref/05-learned-layer/layer_maps.hpp"
#include "ref/05-learned-layer/layer_paths.hpp"

namespace idattn::ref {

namespace {

using cd = std::complex<double>;

using paths::Cell;
using paths::head_cols;
using paths::mat;
using paths::PathSpec;
using paths::PathTape;
using paths::Stage;

// Adds into g[n] what f accumulates into a zero matrix of g[n]'s shape.
template <class F>
void accumulate(Arrays& g, const std::string& n, F&& f) {
    LMat tmp = xt::zeros<double>(g.at(n).shape());
    f(tmp);
    g.at(n) += tmp;
}

// The backward of one path for gy = dL/d(out): adds the parameters' gradients
// into g and returns dL/dx.
LMat path_backward(const PathSpec& s, const LayerParams& p, const LMat& x, const PathTape& tape, LMat gy,
                   Arrays& g) {
    const std::size_t H = p.heads;
    for (std::size_t i = tape.stages.size(); i-- > 0;) {
        const LMat& in = tape.inputs[i];
        switch (tape.stages[i]) {
            case Stage::Norm: {
                LMat gg = xt::zeros<double>(g.at(s.gain).shape()), gb = gg;
                gy = maps::norm_bias_backward(in, mat(p.arrays, s.gain), gy, gg, gb);
                g.at(s.gain) += gg;
                g.at(s.bias) += gb;
                break;
            }
            case Stage::Xi: gy = maps::feature_map_backward(in, H, gy); break;
            case Stage::Rope: gy = maps::rope(gy, H, true); break;  // the transpose of a rotation   eq:5.grad-maps
            case Stage::Conv:
                accumulate(g, s.conv, [&](LMat& gc) { gy = maps::short_conv_backward(in, mat(p.arrays, s.conv), gy, gc); });
                break;
        }
    }
    LMat gx;
    accumulate(g, s.w, [&](LMat& gw) { gx = maps::linear_backward(x, mat(p.arrays, s.w), gy, gw); });
    return gx;
}

// Everything the forward of one sequence x (N, D) computed.
struct SequenceTape {
    std::optional<PathTape> q;
    PathTape key, val;
    LMat o;   // (N, H*d) the heads' outputs, concatenated
    LMat gl;  // (N, H*d) x W_g (gate on)
    LMat og;  // (N, H*d) o gated (or o)
    LMat y;   // (N, D)
};

// The query features of head h: xi(q_t) from the query path, or c_read in every row.
LMat query_features(const SequenceTape& st, const LayerParams& p, const LayerDims& k, std::size_t h, std::size_t N) {
    if (st.q) return head_cols(st.q->out, h, k.R);
    LMat f = xt::zeros<double>({N, k.R});
    for (std::size_t t = 0; t < N; ++t)
        for (std::size_t r = 0; r < k.R; ++r) f(t, r) = p.arrays.at("c_read")(h, r);
    return f;
}

// z_t = [k~_t, v~_t] of head h (N, R + d)     eq:5.ssm
LMat core_input(const SequenceTape& st, const LayerDims& k, std::size_t h) {
    return xt::concatenate(xt::xtuple(head_cols(st.key.out, h, k.R), head_cols(st.val.out, h, k.d)), 1);
}

SequenceTape sequence_forward(LayerVariant v, const LayerParams& p, const LayerDims& k, const LMat& x,
                              const LayerOptions& opt) {
    const Cell c = paths::cell(v, opt.rope);
    const std::size_t N = x.shape(0);
    const RopeOrder ro = opt.rope_order;
    const paths::Matrices w = paths::matrices(p);
    SequenceTape st{c.q ? std::optional<PathTape>(paths::path_forward(*c.q, w, p.heads, x, ro)) : std::nullopt,
                    paths::path_forward(c.key, w, p.heads, x, ro), paths::path_forward(c.val, w, p.heads, x, ro),
                    LMat(xt::zeros<double>({N, k.H * k.d})), LMat(), LMat(), LMat()};
    for (std::size_t h = 0; h < k.H; ++h) {
        LMat oh;
        if (v == LayerVariant::Softmax)  // o = P v: chapter 1's (P1) with R-wide keys, d-wide values   eq:5.softmax
            oh = xt::linalg::dot(maps::causal_softmax(head_cols(st.q->out, h, k.R), head_cols(st.key.out, h, k.R)),
                                 head_cols(st.val.out, h, k.d));
        else
            oh = core_forward(core_params(p, h), query_features(st, p, k, h, N), core_input(st, k, h), opt);
        xt::view(st.o, xt::all(), xt::range(h * k.d, (h + 1) * k.d)) = oh;
    }
    if (k.gate) {
        st.gl = maps::linear(x, mat(p.arrays, "W_g"));
        st.og = maps::gate(st.o, st.gl);  // o (.) SiLU(x W_g)     eq:5.out
    } else {
        st.og = st.o;
    }
    st.y = maps::linear(st.og, mat(p.arrays, "W_o"));  // y = o W_o     eq:5.out
    return st;
}

// dL/dLambda of head h into log_dt, log_A_real and A_imag through
// Lambda = exp(Delta A), Delta = exp(log_dt), A = -exp(log_A_real) + i A_imag     eq:5.grad-ssm
void lambda_backward(const LayerParams& p, std::size_t h, const CVec& glambda, Arrays& g) {
    const double delta = std::exp(p.arrays.at("log_dt")(h));
    double gdelta = 0;
    for (std::size_t m = 0; m < glambda.size(); ++m) {
        const double er = std::exp(p.arrays.at("log_A_real")(h, m));
        const cd a(-er, p.arrays.at("A_imag")(h, m));
        const cd gw = glambda(m) * std::conj(std::exp(delta * a));  // w = Delta A: g_w = conj(Lambda) g_Lambda
        gdelta += (std::conj(gw) * a).real();                       // dL/dDelta = Re(conj(g_w) A)
        const cd ga = delta * gw;                                   // g_A = Delta g_w
        g.at("log_A_real")(h, m) += -er * ga.real();                // dL/dlog_A_real = -exp(log_A_real) Re g_A
        g.at("A_imag")(h, m) += ga.imag();                          // dL/dA_imag = Im g_A
    }
    g.at("log_dt")(h) += delta * gdelta;  // dL/dlog_dt = Delta dL/dDelta
}

// The softmax baseline's backward for one head: dL/dq, dL/dk, dL/dv from dL/do.
void softmax_backward(const LMat& q, const LMat& kk, const LMat& vv, const LMat& go, LMat& gq, LMat& gk, LMat& gv) {
    const std::size_t N = q.shape(0), R = q.shape(1), d = vv.shape(1);
    const LMat pr = maps::causal_softmax(q, kk);
    gq = xt::zeros<double>(q.shape());
    gk = xt::zeros<double>(kk.shape());
    gv = xt::zeros<double>(vv.shape());
    for (std::size_t t = 0; t < N; ++t) {
        std::vector<double> gp(t + 1, 0.0);  // dL/dP[t, s] = go_t . v_s
        double rowsum = 0;
        for (std::size_t s = 0; s <= t; ++s) {
            for (std::size_t j = 0; j < d; ++j) {
                gp[s] += go(t, j) * vv(s, j);
                gv(s, j) += pr(t, s) * go(t, j);  // dL/dv = P^T go
            }
            rowsum += gp[s] * pr(t, s);
        }
        for (std::size_t s = 0; s <= t; ++s) {
            const double gs = pr(t, s) * (gp[s] - rowsum) / std::sqrt(double(R));  // dL/dlogit / sqrt(R)
            for (std::size_t r = 0; r < R; ++r) {
                gq(t, r) += gs * kk(s, r);
                gk(s, r) += gs * q(t, r);
            }
        }
    }
}

void set_head_cols(LMat& a, std::size_t h, std::size_t w, const LMat& cols) {
    xt::view(a, xt::all(), xt::range(h * w, (h + 1) * w)) = cols;
}

// The backward of one sequence: returns dL/dx and adds into g.
LMat sequence_backward(LayerVariant v, const LayerParams& p, const LayerDims& k, const LMat& x, const LMat& dy,
                       const LayerOptions& opt, Arrays& g) {
    const Cell c = paths::cell(v, opt.rope);
    const SequenceTape st = sequence_forward(v, p, k, x, opt);
    const std::size_t N = x.shape(0);
    LMat gx = xt::zeros<double>(x.shape());
    // y = og W_o; og = o (.) SiLU(x W_g)     eq:5.out
    LMat gog;
    accumulate(g, "W_o", [&](LMat& gw) { gog = maps::linear_backward(st.og, mat(p.arrays, "W_o"), dy, gw); });
    LMat go = gog;
    if (k.gate) {
        LMat ggl;
        maps::gate_backward(st.o, st.gl, gog, go, ggl);
        accumulate(g, "W_g", [&](LMat& gw) { gx += maps::linear_backward(x, mat(p.arrays, "W_g"), ggl, gw); });
    }
    LMat gq = c.q ? LMat(xt::zeros<double>(st.q->out.shape())) : LMat();
    LMat gkey = xt::zeros<double>(st.key.out.shape()), gval = xt::zeros<double>(st.val.out.shape());
    for (std::size_t h = 0; h < k.H; ++h) {
        const LMat goh = head_cols(go, h, k.d);
        if (v == LayerVariant::Softmax) {
            LMat a, b, cc;
            softmax_backward(head_cols(st.q->out, h, k.R), head_cols(st.key.out, h, k.R), head_cols(st.val.out, h, k.d),
                             goh, a, b, cc);
            set_head_cols(gq, h, k.R, a);
            set_head_cols(gkey, h, k.R, b);
            set_head_cols(gval, h, k.d, cc);
            continue;
        }
        const CoreParams cp = core_params(p, h);
        const CoreGrads cg = core_backward(cp, query_features(st, p, k, h, N), core_input(st, k, h), goh, opt);
        if (c.q) {
            set_head_cols(gq, h, k.R, cg.df);
        } else {
            for (std::size_t t = 0; t < N; ++t)
                for (std::size_t r = 0; r < k.R; ++r) g.at("c_read")(h, r) += cg.df(t, r);
        }
        set_head_cols(gkey, h, k.R, xt::view(cg.dz, xt::all(), xt::range(0, k.R)));
        set_head_cols(gval, h, k.d, xt::view(cg.dz, xt::all(), xt::range(k.R, k.R + k.d)));
        lambda_backward(p, h, cg.dlambda, g);
        for (std::size_t m = 0; m < k.M; ++m) {  // complex B and C: (dL/dRe, dL/dIm)     eq:5.grad-ssm
            g.at("B")(h, m, 0) += cg.db(m).real();
            g.at("B")(h, m, 1) += cg.db(m).imag();
            for (std::size_t n = 0; n < k.M; ++n) {
                g.at("C")(h, m, n, 0) += cg.dc(m, n).real();
                g.at("C")(h, m, n, 1) += cg.dc(m, n).imag();
            }
        }
    }
    if (c.q) gx += path_backward(*c.q, p, x, *st.q, gq, g);
    gx += path_backward(c.key, p, x, st.key, gkey, g);
    gx += path_backward(c.val, p, x, st.val, gval, g);
    return gx;
}

LayerDims check_call(const std::string& what, LayerVariant v, const LayerParams& p, const xt::xtensor<double, 3>& x,
                     const LayerOptions& opt, bool backward) {
    const LayerDims k = check_layer_params(what, v, p, opt.rope);
    const std::vector<std::size_t> xs(x.shape().begin(), x.shape().end());
    if (xs[0] == 0 || xs[1] == 0 || xs[2] != k.D)
        throw Error(what + ": x has shape " + shape_str(xs) + " but expected (B, N, " + std::to_string(k.D) +
                    ") with B, N >= 1 (D = " + std::to_string(k.D) + " from W_o)");
    require_finite(what, "x", x.data(), xs);
    if (opt.form == LayerForm::Chunked && opt.chunk == 0) throw Error(what + ": the chunk length must be >= 1, got 0");
    if (opt.backward == LayerBackward::LambdaDivision && opt.checkpoint == 0)
        throw Error(what + ": the checkpoint interval must be >= 1, got 0");
    const std::size_t N = xs[1], P = k.R + k.d;
    std::vector<Alloc> allocs{{"the paths' activations", {8, N, k.H * std::max(k.R, k.d)}, 8}};
    if (v == LayerVariant::Softmax) allocs.push_back({"the attention matrix", {N, N}, 8});
    else if (backward && opt.backward == LayerBackward::Stored) allocs.push_back({"the states X_t", {N, k.M, P}, 16});
    require_memory(what, "N = " + std::to_string(N) + ", M = " + std::to_string(k.M), allocs);
    return k;
}

}  // namespace

xt::xtensor<double, 3> layer_forward(LayerVariant v, const LayerParams& p, const xt::xtensor<double, 3>& x,
                                     const LayerOptions& opt) {
    const LayerDims k = check_call("layer", v, p, x, opt, false);
    xt::xtensor<double, 3> y = xt::zeros<double>(x.shape());
    for (std::size_t b = 0; b < x.shape(0); ++b)
        xt::view(y, b) = sequence_forward(v, p, k, LMat(xt::view(x, b)), opt).y;
    return y;
}

LayerGrads layer_backward(LayerVariant v, const LayerParams& p, const xt::xtensor<double, 3>& x,
                          const xt::xtensor<double, 3>& dy, const LayerOptions& opt) {
    const std::string what = "layer backward";
    const LayerDims k = check_call(what, v, p, x, opt, true);
    const std::vector<std::size_t> ys(dy.shape().begin(), dy.shape().end());
    if (dy.shape() != x.shape())
        throw Error(what + ": dy has shape " + shape_str(ys) + " but x has shape " +
                    shape_str({x.shape(0), x.shape(1), x.shape(2)}) + "; expected dy of the same shape as x (and y)");
    require_finite(what, "dy", dy.data(), ys);
    LayerGrads g{xt::zeros<double>(x.shape()), {}};
    for (const auto& [n, a] : p.arrays) g.params.emplace(n, xt::xarray<double>(xt::zeros<double>(a.shape())));
    for (std::size_t b = 0; b < x.shape(0); ++b)
        xt::view(g.dx, b) = sequence_backward(v, p, k, LMat(xt::view(x, b)), LMat(xt::view(dy, b)), opt, g.params);
    return g;
}

}  // namespace idattn::ref
