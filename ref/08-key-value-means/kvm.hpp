// Chapter 8, exact reference: Key-Value Means (Goldstein & Cheah, arXiv
// 2605.09877), one head, float64. Softmax attention over [state rows; a block
// sliding window], where the tokens leaving the window are appended to, or
// merged into, a bounded set of state rows: online spherical k-means over keys.
// See chapters/08-key-value-means.md; the paper's choices are the defaults, the
// reference code's are options.
//
// Time. Tokens u = 0..N-1, chunks of C tokens, a window of L = W C tokens.
// Query u reads the window [b(u), u] with b(u) = ceil((u + 1) / C) C - L, and the
// state, which then covers exactly the tokens [0, b(u)) (eq:8.window). The
// first min(N, L) queries attend exactly (causal softmax over 0..u).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

namespace idattn::ref {

using KMat = xt::xtensor<double, 2>;

// The desired number of state rows B(t) at context length t (eq:8.budget).
enum class KvmBudgetKind {
    Fixed,     // B = rows
    PowerLaw,  // B = max(floor(factor t^exponent), rows)   (the paper's "sqrt": factor 16, exponent 1/2, rows 256)
    Saturate,  // B = floor(rows t / (rows + t))            (saturates at `rows`)
};
struct KvmBudget {
    KvmBudgetKind kind = KvmBudgetKind::Fixed;
    std::size_t rows = 256;
    double factor = 16.0, exponent = 0.5;  // PowerLaw only
};
std::size_t kvm_budget(const KvmBudget& b, std::size_t t);

struct KvmOptions {
    std::size_t chunk = 256;        // C
    std::size_t window_chunks = 2;  // W: the window holds the last W chunks' tokens, L = W C
    std::size_t sinks = 1;          // S: the first S state rows are never merge targets
    KvmBudget budget;
    std::size_t rope_dims = 0;      // the leading channels of a key that RoPE rotated, zeroed in memory keys
    bool state_norm = true;         // LN_s on memory and state keys (gamma 1, beta 0); false: identity
    double ln_eps = 1e-5;
    double tau_state = 1.0, tau_window = 1.0;  // inverse temperatures of state and window keys
    bool gate_appends = false;      // paper: appended rows ungated; the reference code: gated
};

// The state of one head: accumulated keys and values of m rows, each row's
// readout radius, and the tokens folded in so far.
struct KvmState {
    std::size_t coverage = 0;  // the state covers tokens [0, coverage)
    KMat keys, values;         // (m, dk), (m, dv): sums, normalised only when read (eq:8.readout)
    std::vector<double> radius;  // rho_i = |v| of the row's first token, fixed for the row's life
};

// What one fold did, for the tests of the merge invariants.
struct KvmFold {
    std::vector<std::size_t> appended;  // block positions appended, ascending
    std::vector<std::size_t> target;    // per block position: the row it was merged into, or SIZE_MAX if appended
    std::size_t rows_before = 0;
};

// Throws idattn::Error, prefixed with `what`, naming the bad value: chunk 0,
// window_chunks 0, sinks >= chunk (the initial state would have no merge
// target), a budget of 0 rows, a power law with a non-finite or non-positive
// factor, ln_eps < 0, non-finite temperatures, rope_dims > dk.
void check_kvm_options(const std::string& what, const KvmOptions& o, std::size_t dk);

// The memory key of token j: LN_s(k_j with its first rope_dims channels zeroed)     eq:8.memkey
xt::xtensor<double, 1> kvm_memory_key(const KvmOptions& o, const xt::xtensor<double, 1>& k);

// Folds the block of tokens [state.coverage, state.coverage + C) into the state
// (the initial state when it is empty: the block's memory keys, values and
// radii, eq:8.init), at context length t: append (eq:8.append) then merge
// (eq:8.merge). k (N, dk), v (N, dv), g (N,) the merge gates.
KvmFold kvm_fold(KvmState& state, const KMat& k, const KMat& v, const std::vector<double>& g, std::size_t t,
                 const KvmOptions& o);

// Prefill: the outputs (N, dv) computed a chunk of queries at a time, the state
// folded before each chunk; `state`, when given, receives the final state.
// g empty: every gate 1.
KMat kvm_attention(const KMat& q, const KMat& k, const KMat& v, const std::vector<double>& g, const KvmOptions& o,
                   KvmState* state = nullptr);

// Decode: the same outputs one token at a time (each query alone, folds as
// the window moves).
KMat kvm_decode(const KMat& q, const KMat& k, const KMat& v, const std::vector<double>& g, const KvmOptions& o);

}  // namespace idattn::ref
