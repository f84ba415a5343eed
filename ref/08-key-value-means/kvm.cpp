// Chapter 8: Key-Value Means, literal: the budget, memory keys, the fold of an
// overflow block (initial state, append, merge) and the readout over
// [state rows; window], as a chunked prefill and as token-by-token decoding.
#include "ref/08-key-value-means/kvm.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xview.hpp>

#include "core/error.hpp"
#include "core/validate.hpp"

namespace idattn::ref {

namespace {

using Vec = xt::xtensor<double, 1>;

Vec row(const KMat& m, std::size_t i) { return xt::view(m, i, xt::all()); }

double dot(const Vec& a, const Vec& b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += a(i) * b(i);
    return s;
}

double l2norm(const Vec& a) { return std::sqrt(dot(a, a)); }

// LN_s with gamma 1 and beta 0, or the identity when state_norm is off.
Vec state_norm(const KvmOptions& o, const Vec& x) {
    if (!o.state_norm) return x;
    const double n = double(x.size());
    double mean = 0, var = 0;
    for (double e : x) mean += e / n;
    for (double e : x) var += (e - mean) * (e - mean) / n;
    Vec y = x;
    for (auto& e : y) e = (e - mean) / std::sqrt(var + o.ln_eps);
    return y;
}

void append_row(KMat& m, const Vec& r) {
    KMat out = xt::zeros<double>({m.shape(0) + 1, r.size()});
    if (m.shape(0)) xt::view(out, xt::range(0, m.shape(0)), xt::all()) = m;
    xt::view(out, m.shape(0), xt::all()) = r;
    m = std::move(out);
}

// The readout's state rows: keys tau_state LN_s(sK_i), values rho_i sV_i / max(|sV_i|, eps)     eq:8.readout
struct ReadRows {
    KMat keys, values;
};
ReadRows read_rows(const KvmState& s, const KvmOptions& o) {
    const std::size_t m = s.keys.shape(0);
    ReadRows r{KMat(xt::zeros<double>({m, s.keys.shape(1)})), KMat(xt::zeros<double>({m, s.values.shape(1)}))};
    for (std::size_t i = 0; i < m; ++i) {
        xt::view(r.keys, i, xt::all()) = o.tau_state * state_norm(o, row(s.keys, i));
        const Vec sv = row(s.values, i);
        xt::view(r.values, i, xt::all()) = s.radius[i] * sv / std::max(l2norm(sv), 1e-12);
    }
    return r;
}

// softmax over [state scores; window scores q.k_j tau_window / sqrt(dk), j = lo..hi], times [values]     eq:8.readout
Vec attend(const Vec& state_scores, const ReadRows& rows, const KMat& q, const KMat& k, const KMat& v, std::size_t u,
           std::size_t lo, const KvmOptions& o) {
    const double scale = 1.0 / std::sqrt(double(q.shape(1)));
    std::vector<double> w(state_scores.size() + (u + 1 - lo));
    for (std::size_t i = 0; i < state_scores.size(); ++i) w[i] = state_scores(i);
    for (std::size_t j = lo; j <= u; ++j) {
        double s = 0;
        for (std::size_t c = 0; c < q.shape(1); ++c) s += q(u, c) * k(j, c);
        w[state_scores.size() + j - lo] = o.tau_window * s * scale;
    }
    const double mx = *std::max_element(w.begin(), w.end());
    double sum = 0;
    for (double& e : w) sum += (e = std::exp(e - mx));
    Vec y = xt::zeros<double>({v.shape(1)});
    for (std::size_t i = 0; i < state_scores.size(); ++i) y += w[i] / sum * row(rows.values, i);
    for (std::size_t j = lo; j <= u; ++j) y += w[state_scores.size() + j - lo] / sum * row(v, j);
    return y;
}

void check_inputs(const std::string& what, const KMat& q, const KMat& k, const KMat& v, const std::vector<double>& g,
                  const KvmOptions& o) {
    auto sh = [](const KMat& m) { return std::vector<std::size_t>{m.shape(0), m.shape(1)}; };
    if (q.shape(0) == 0 || q.shape(1) == 0 || v.shape(1) == 0)
        throw Error(what + ": q has shape " + shape_str(sh(q)) + " and v " + shape_str(sh(v)) +
                    "; expected N >= 1 tokens and widths >= 1");
    if (k.shape(0) != q.shape(0) || k.shape(1) != q.shape(1))
        throw Error(what + ": k has shape " + shape_str(sh(k)) + " but q has shape " + shape_str(sh(q)) +
                    "; expected k of the same shape");
    if (v.shape(0) != q.shape(0))
        throw Error(what + ": v has shape " + shape_str(sh(v)) + " but q has N = " + std::to_string(q.shape(0)) +
                    " tokens; expected v of shape (" + std::to_string(q.shape(0)) + ", dv)");
    if (!g.empty() && g.size() != q.shape(0))
        throw Error(what + ": the merge gates g have " + std::to_string(g.size()) + " entries but there are N = " +
                    std::to_string(q.shape(0)) + " tokens");
    for (std::size_t j = 0; j < g.size(); ++j)
        if (!(g[j] > 0) || !std::isfinite(g[j]))
            throw Error(what + ": the merge gate g(" + std::to_string(j) + ") = " + num_str(g[j]) +
                        " must be finite and > 0 (the paper's 1 + ELU(.))");
    require_finite(what, "q", q.data(), sh(q));
    require_finite(what, "k", k.data(), sh(k));
    require_finite(what, "v", v.data(), sh(v));
    check_kvm_options(what, o, q.shape(1));
}

double gate(const std::vector<double>& g, std::size_t j) { return g.empty() ? 1.0 : g[j]; }

}  // namespace

std::size_t kvm_budget(const KvmBudget& b, std::size_t t) {
    switch (b.kind) {
        case KvmBudgetKind::Fixed: return b.rows;  // B = rows     eq:8.budget
        case KvmBudgetKind::PowerLaw:               // B = max(floor(factor t^exponent), rows)
            return std::max(b.rows, std::size_t(std::floor(b.factor * std::pow(double(t), b.exponent))));
        case KvmBudgetKind::Saturate:               // B = floor(rows t / (rows + t))
            return std::size_t(std::floor(double(b.rows) * double(t) / (double(b.rows) + double(t))));
    }
    throw Error("kvm_budget: unknown budget");
}

void check_kvm_options(const std::string& what, const KvmOptions& o, std::size_t dk) {
    if (o.chunk == 0) throw Error(what + ": the chunk length C must be >= 1, got 0");
    if (o.window_chunks == 0)
        throw Error(what + ": the window must hold at least one chunk (window_chunks >= 1), got 0");
    if (o.window_chunks > kMaxElements / o.chunk)
        throw Error(what + ": a window of window_chunks = " + std::to_string(o.window_chunks) + " chunks of C = " +
                    std::to_string(o.chunk) + " tokens is longer than any sequence (W C overflows)");
    if (o.sinks >= o.chunk)
        throw Error(what + ": sinks = " + std::to_string(o.sinks) + " but the initial state has C = " +
                    std::to_string(o.chunk) + " rows; a merge needs a row that is not a sink, so sinks < C");
    if (o.budget.rows == 0) throw Error(what + ": the budget's rows must be >= 1, got 0");
    if (o.budget.kind == KvmBudgetKind::PowerLaw &&
        (!(o.budget.factor > 0) || !std::isfinite(o.budget.factor) || !std::isfinite(o.budget.exponent)))
        throw Error(what + ": the power-law budget needs a finite factor > 0 and a finite exponent, got factor " +
                    num_str(o.budget.factor) + ", exponent " + num_str(o.budget.exponent));
    if (!(o.ln_eps >= 0) || !std::isfinite(o.ln_eps)) throw Error(what + ": ln_eps must be finite and >= 0");
    if (!std::isfinite(o.tau_state) || !std::isfinite(o.tau_window))
        throw Error(what + ": the temperatures must be finite");
    if (o.rope_dims > dk)
        throw Error(what + ": rope_dims = " + std::to_string(o.rope_dims) + " exceeds the key width " +
                    std::to_string(dk));
}

Vec kvm_memory_key(const KvmOptions& o, const Vec& k) {
    Vec z = k;
    for (std::size_t c = 0; c < std::min(o.rope_dims, z.size()); ++c) z(c) = 0.0;  // RoPE channels zeroed
    return state_norm(o, z);  // kbar = LN_s(k with the RoPE channels zeroed)     eq:8.memkey
}

KvmFold kvm_fold(KvmState& s, const KMat& k, const KMat& v, const std::vector<double>& g, std::size_t t,
                 const KvmOptions& o) {
    const std::size_t C = o.chunk, c0 = s.coverage;
    if (c0 + C > k.shape(0))
        throw Error("kvm_fold: the block [" + std::to_string(c0) + ", " + std::to_string(c0 + C) +
                    ") runs past the N = " + std::to_string(k.shape(0)) + " tokens");
    KvmFold f;
    f.rows_before = s.keys.shape(0);
    f.target.assign(C, std::numeric_limits<std::size_t>::max());
    if (c0 == 0) {  // the initial state: the first chunk's memory keys, values and radii     eq:8.init
        s.keys = xt::zeros<double>({std::size_t{0}, k.shape(1)});
        s.values = xt::zeros<double>({std::size_t{0}, v.shape(1)});
        for (std::size_t j = 0; j < C; ++j) {
            append_row(s.keys, kvm_memory_key(o, row(k, j)));
            append_row(s.values, row(v, j));
            s.radius.push_back(l2norm(row(v, j)));
            f.appended.push_back(j);
        }
        s.coverage = C;
        return f;
    }
    std::vector<Vec> kbar(C);
    for (std::size_t j = 0; j < C; ++j) kbar[j] = kvm_memory_key(o, row(k, c0 + j));
    // How many rows to add: M* = max(m, min(B(t), b+)), n_append = min(M* - m, C)     eq:8.budget
    const std::size_t m = s.keys.shape(0), available = c0 + C;
    const std::size_t target_rows = std::max(m, std::min(kvm_budget(o.budget, t), available));
    const std::size_t n_append = std::min(target_rows - m, C);
    if (n_append > 0) {
        // s_j = max_i kbar_j . LN_s(sK_i); the n_append smallest are appended (ties: the earlier token)     eq:8.append
        std::vector<Vec> normed(m);
        for (std::size_t i = 0; i < m; ++i) normed[i] = state_norm(o, row(s.keys, i));
        std::vector<double> score(C, -INFINITY);
        for (std::size_t j = 0; j < C; ++j)
            for (std::size_t i = 0; i < m; ++i) score[j] = std::max(score[j], dot(kbar[j], normed[i]));
        std::vector<std::size_t> order(C);
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return score[a] < score[b]; });
        f.appended.assign(order.begin(), order.begin() + n_append);
        std::sort(f.appended.begin(), f.appended.end());
        for (std::size_t j : f.appended) {
            const double gj = o.gate_appends ? gate(g, c0 + j) : 1.0;
            append_row(s.keys, gj * kbar[j]);
            append_row(s.values, gj * row(v, c0 + j));
            s.radius.push_back(l2norm(gj * row(v, c0 + j)));
        }
    }
    // Merge the rest into the most similar row that is not a sink, the appended rows included:
    // pi(j) = argmax_{i >= S} kbar_j . LN_s(sK+_i) (ties: the lower row); sK += g kbar, sV += g v     eq:8.merge
    const std::size_t rows = s.keys.shape(0);
    std::vector<Vec> normed(rows);
    for (std::size_t i = 0; i < rows; ++i) normed[i] = state_norm(o, row(s.keys, i));
    std::vector<bool> is_appended(C, false);
    for (std::size_t j : f.appended) is_appended[j] = true;
    KMat dk = xt::zeros<double>(s.keys.shape()), dv = xt::zeros<double>(s.values.shape());
    for (std::size_t j = 0; j < C; ++j) {
        if (is_appended[j]) continue;
        std::size_t best = o.sinks;
        double best_score = -INFINITY;
        for (std::size_t i = o.sinks; i < rows; ++i) {
            const double sc = dot(kbar[j], normed[i]);
            if (sc > best_score) {
                best_score = sc;
                best = i;
            }
        }
        f.target[j] = best;
        xt::view(dk, best, xt::all()) += gate(g, c0 + j) * kbar[j];
        xt::view(dv, best, xt::all()) += gate(g, c0 + j) * row(v, c0 + j);
    }
    s.keys += dk;
    s.values += dv;
    s.coverage = c0 + C;
    return f;
}

KMat kvm_attention(const KMat& q, const KMat& k, const KMat& v, const std::vector<double>& g, const KvmOptions& o,
                   KvmState* final_state) {
    check_inputs("kvm", q, k, v, g, o);
    const std::size_t N = q.shape(0), C = o.chunk, L = o.window_chunks * C, L0 = std::min(N, L);
    KMat y = xt::zeros<double>({N, v.shape(1)});
    const ReadRows none{KMat(xt::zeros<double>({std::size_t{0}, k.shape(1)})),
                        KMat(xt::zeros<double>({std::size_t{0}, v.shape(1)}))};
    for (std::size_t u = 0; u < L0; ++u)  // the first min(N, L) queries: exact causal attention     eq:8.window
        xt::view(y, u, xt::all()) = attend(Vec(xt::zeros<double>({std::size_t{0}})), none, q, k, v, u, 0, o);
    KvmState s;
    for (std::size_t s0 = L0; s0 < N; s0 += C) {  // a chunk of queries [s0, e), window start b = s0 + C - L
        const std::size_t e = std::min(N, s0 + C), b = s0 + C - L;
        while (s.coverage < b) kvm_fold(s, k, v, g, b + L, o);  // the state catches up with the window
        const ReadRows rows = read_rows(s, o);
        // the chunk's state scores at once: Q_chunk (tau_state LN_s(sK))^T / sqrt(dk)
        const KMat qc = xt::view(q, xt::range(s0, e), xt::all());
        const KMat scores = xt::linalg::dot(qc, xt::transpose(rows.keys)) / std::sqrt(double(q.shape(1)));
        for (std::size_t u = s0; u < e; ++u)
            xt::view(y, u, xt::all()) = attend(Vec(xt::view(scores, u - s0, xt::all())), rows, q, k, v, u, b, o);
    }
    if (final_state) *final_state = s;  // eq:8.init eq:8.append eq:8.merge live in kvm_fold
    return y;
}

KMat kvm_decode(const KMat& q, const KMat& k, const KMat& v, const std::vector<double>& g, const KvmOptions& o) {
    check_inputs("kvm decode", q, k, v, g, o);
    const std::size_t N = q.shape(0), C = o.chunk, L = o.window_chunks * C;
    KMat y = xt::zeros<double>({N, v.shape(1)});
    KvmState s;
    for (std::size_t u = 0; u < N; ++u) {
        if (u < L) {  // exact causal attention while the whole prefix fits the window
            const ReadRows none{KMat(xt::zeros<double>({std::size_t{0}, k.shape(1)})),
                                KMat(xt::zeros<double>({std::size_t{0}, v.shape(1)}))};
            xt::view(y, u, xt::all()) = attend(Vec(xt::zeros<double>({std::size_t{0}})), none, q, k, v, u, 0, o);
            continue;
        }
        const std::size_t b = (u / C + 1) * C - L;  // b(u) = ceil((u + 1)/C) C - L     eq:8.window
        while (s.coverage < b) kvm_fold(s, k, v, g, b + L, o);
        const ReadRows rows = read_rows(s, o);
        Vec scores = xt::zeros<double>({rows.keys.shape(0)});
        for (std::size_t i = 0; i < rows.keys.shape(0); ++i) scores(i) = dot(row(q, u), row(rows.keys, i)) / std::sqrt(double(q.shape(1)));
        xt::view(y, u, xt::all()) = attend(scores, rows, q, k, v, u, b, o);
    }
    return y;
}

}  // namespace idattn::ref
