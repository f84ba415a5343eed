// Chapter 5: one head's SSM core of the learned layer, forward in three forms
// and backward in two, literal loops over tokens, modes and channels
// (chapters/05-learned-layer.md, sections 5.2-5.5).
//
// Notation of the chapter: z_t = [k~_t, v~_t] (P = R + d channels), the state
// X_t (M, P) = [X^k_t | X^v_t], f_t the query features (or c_read).
#include <cmath>
#include <algorithm>
#include <map>
#include <vector>

#include <xtensor/xview.hpp>

#include "core/error.hpp"
#include "ref/05-learned-layer/layer.hpp"

namespace idattn::ref {

namespace {

using cd = std::complex<double>;

CMat cmat(std::size_t rows, std::size_t cols) { return CMat(xt::zeros<cd>({rows, cols})); }

// X <- Lambda (.) X + B z_t^T     eq:5.ssm
void step(const CoreParams& cp, const LMat& z, std::size_t t, CMat& x) {
    for (std::size_t m = 0; m < x.shape(0); ++m)
        for (std::size_t p = 0; p < x.shape(1); ++p) x(m, p) = cp.lambda(m) * x(m, p) + cp.b(m) * z(t, p);
}

// The explicit readout of one token from X (M, P): [U | Gamma] = C X (eq:5.C),
// a[m] = sum_r f_r conj(U[m, r]), o_j = Re sum_m a[m] Gamma[m, j] (eq:P13).
void readout(const CoreParams& cp, const LMat& f, std::size_t t, const CMat& x, LMat& out) {
    const std::size_t M = x.shape(0), P = x.shape(1), R = f.shape(1);
    CMat y = cmat(M, P);
    for (std::size_t m = 0; m < M; ++m)
        for (std::size_t p = 0; p < P; ++p)
            for (std::size_t n = 0; n < M; ++n) y(m, p) += cp.c(m, n) * x(n, p);  // [U | Gamma] = C X   eq:5.C
    for (std::size_t m = 0; m < M; ++m) {
        cd a = 0;
        for (std::size_t r = 0; r < R; ++r) a += f(t, r) * std::conj(y(m, r));  // a = xi(q) U^H   eq:P13
        for (std::size_t j = 0; j + R < P; ++j) out(t, j) += (a * y(m, R + j)).real();  // Re(a Gamma)   eq:P13
    }
}

}  // namespace

// G = C^H C (M, M), Hermitian     eq:5.fold
CMat fold_readout(const CMat& c) {
    const std::size_t M = c.shape(0);
    CMat g = cmat(M, M);
    for (std::size_t i = 0; i < M; ++i)
        for (std::size_t j = 0; j < M; ++j)
            for (std::size_t m = 0; m < M; ++m) g(i, j) += std::conj(c(m, i)) * c(m, j);
    return g;
}

namespace {

// The folded readout of one token: kappa = X^k f_t, beta = G kappa,
// o_j = Re sum_n conj(beta_n) X^v[n, j]     eq:5.fold
void readout_folded(const CMat& g, const LMat& f, std::size_t t, const CMat& x, LMat& out) {
    const std::size_t M = x.shape(0), P = x.shape(1), R = f.shape(1);
    std::vector<cd> kappa(M, 0.0), beta(M, 0.0);
    for (std::size_t n = 0; n < M; ++n)
        for (std::size_t r = 0; r < R; ++r) kappa[n] += x(n, r) * f(t, r);
    for (std::size_t i = 0; i < M; ++i)
        for (std::size_t n = 0; n < M; ++n) beta[i] += g(i, n) * kappa[n];
    for (std::size_t n = 0; n < M; ++n)
        for (std::size_t j = 0; j + R < P; ++j) out(t, j) += (std::conj(beta[n]) * x(n, R + j)).real();
}

void require_core_shapes(const CoreParams& cp, const LMat& f, const LMat& z) {
    const std::size_t M = cp.lambda.size(), R = f.shape(1);
    if (cp.b.size() != M || cp.c.shape(0) != M || cp.c.shape(1) != M)
        throw Error("core: B has shape " + shape_str({cp.b.size()}) + " and C " +
                    shape_str({cp.c.shape(0), cp.c.shape(1)}) + " but Lambda has M = " + std::to_string(M));
    if (f.shape(0) != z.shape(0) || z.shape(1) <= R)
        throw Error("core: z has shape " + shape_str({z.shape(0), z.shape(1)}) + " but f has shape " +
                    shape_str({f.shape(0), f.shape(1)}) + "; expected z of shape (N, R + d), d >= 1");
}

// The forward's checkpoints for the Lambda-division backward: X_t at
// t = K-1, 2K-1, ... and at t = N-1     eq:5.lambda-div
std::map<std::size_t, CMat> checkpoints(const CoreParams& cp, const LMat& z, std::size_t K) {
    const std::size_t N = z.shape(0);
    std::map<std::size_t, CMat> kept;
    CMat x = cmat(cp.lambda.size(), z.shape(1));
    for (std::size_t t = 0; t < N; ++t) {
        step(cp, z, t, x);
        if ((t + 1) % K == 0 || t + 1 == N) kept.emplace(t, x);
    }
    return kept;
}

// X_{t-1} from X_t: the checkpoint where there is one (zero before t = 0), else
// X_{t-1} = (X_t - B z_t^T) / Lambda     eq:5.lambda-div
// Each division multiplies the error carried so far by 1/|Lambda| and adds its
// own rounding, so after j divisions the error is at most
// 16 u S sum_{i=1..j} |Lambda|^-i, j <= K - 1: the checkpoints bound it     eq:5.lambda-err
CMat previous_state(const CoreParams& cp, const LMat& z, std::size_t t, const CMat& x,
                    const std::map<std::size_t, CMat>& kept) {
    if (t == 0) return cmat(x.shape(0), x.shape(1));
    if (auto it = kept.find(t - 1); it != kept.end()) return it->second;
    CMat prev = cmat(x.shape(0), x.shape(1));
    for (std::size_t m = 0; m < x.shape(0); ++m)
        for (std::size_t p = 0; p < x.shape(1); ++p) prev(m, p) = (x(m, p) - cp.b(m) * z(t, p)) / cp.lambda(m);
    return prev;
}

// The recurrence token by token from the state x (eq:5.ssm), each token read out
// by read(t, X_t, out); x is left at the last token's state.
template <class Read>
LMat recurrence_then_readout(const CoreParams& cp, const LMat& f, const LMat& z, CMat& x, Read&& read) {
    require_core_shapes(cp, f, z);
    const std::size_t N = z.shape(0), R = f.shape(1);
    LMat out(xt::zeros<double>({N, z.shape(1) - R}));
    for (std::size_t t = 0; t < N; ++t) {
        step(cp, z, t, x);
        read(t, x, out);
    }
    return out;
}

}  // namespace

CStates core_states(const CoreParams& cp, const LMat& z) {
    const std::size_t N = z.shape(0), M = cp.lambda.size(), P = z.shape(1);
    CStates xs(xt::zeros<cd>({N, M, P}));
    CMat x = cmat(M, P);
    for (std::size_t t = 0; t < N; ++t) {
        step(cp, z, t, x);
        xt::view(xs, t) = x;
    }
    return xs;
}

CStates core_states_lambda_division(const CoreParams& cp, const LMat& z, std::size_t checkpoint) {
    if (checkpoint == 0) throw Error("core_states_lambda_division: the checkpoint interval K must be >= 1, got 0");
    const std::size_t N = z.shape(0), M = cp.lambda.size(), P = z.shape(1);
    const auto kept = checkpoints(cp, z, checkpoint);
    CStates xs(xt::zeros<cd>({N, M, P}));
    CMat x = kept.at(N - 1);
    for (std::size_t t = N; t-- > 0;) {
        xt::view(xs, t) = x;
        x = previous_state(cp, z, t, x, kept);
    }
    return xs;
}

LMat core_forward_from(const CoreParams& cp, const LMat& f, const LMat& z, CMat& x, const CMat* g) {
    if (x.shape(0) != cp.lambda.size() || x.shape(1) != z.shape(1))
        throw Error("core: the state X has shape " + shape_str({x.shape(0), x.shape(1)}) + " but expected (" +
                    std::to_string(cp.lambda.size()) + ", " + std::to_string(z.shape(1)) + ") = (M, R + d)");
    if (!g)
        return recurrence_then_readout(cp, f, z, x, [&](std::size_t t, const CMat& x_t, LMat& out) {
            readout(cp, f, t, x_t, out);  // eq:5.C, eq:P13
        });
    return recurrence_then_readout(cp, f, z, x, [&](std::size_t t, const CMat& x_t, LMat& out) {
        readout_folded(*g, f, t, x_t, out);  // eq:5.fold
    });
}

LMat core_forward_recurrence(const CoreParams& cp, const LMat& f, const LMat& z) {
    CMat x = cmat(cp.lambda.size(), z.shape(1));
    return core_forward_from(cp, f, z, x, nullptr);
}

LMat core_forward_folded(const CoreParams& cp, const LMat& f, const LMat& z) {
    CMat x = cmat(cp.lambda.size(), z.shape(1));
    const CMat g = fold_readout(cp.c);
    return core_forward_from(cp, f, z, x, &g);
}

LMat core_forward_chunked(const CoreParams& cp, const LMat& f, const LMat& z, std::size_t chunk) {
    require_core_shapes(cp, f, z);
    if (chunk == 0) throw Error("core_forward_chunked: the chunk length must be >= 1, got 0");
    const std::size_t N = z.shape(0), M = cp.lambda.size(), P = z.shape(1), R = f.shape(1), d = P - R;
    const CMat g = fold_readout(cp.c);
    // Lambda_m^k = exp(k log Lambda_m) for k = 0..min(chunk, N) (chapter 4's lambda_power), tabulated
    // once with the logarithm taken once per mode: glibc's complex log is slow near |z| = 1.
    const std::size_t kmax = std::min(chunk, N);
    CMat powers = cmat(kmax + 1, M);
    for (std::size_t m = 0; m < M; ++m) {
        const cd log_lambda = cp.lambda(m) == cd(0) ? cd(0) : std::log(cp.lambda(m));
        for (std::size_t k = 0; k <= kmax; ++k)
            powers(k, m) = cp.lambda(m) == cd(0) ? cd(k == 0 ? 1.0 : 0.0) : std::exp(double(k) * log_lambda);
    }
    auto pw = [&](std::size_t m, std::size_t k) { return powers(k, m); };  // Lambda_m^k
    LMat out(xt::zeros<double>({N, d}));
    CMat h = cmat(M, P);  // the carried state X_{t0-1}
    for (std::size_t t0 = 0; t0 < N; t0 += chunk) {
        const std::size_t t1 = std::min(N, t0 + chunk);
        // Pass 1: kappa_t = D_t (H^k f_t) + sum_{t0 <= s <= t} psi(t - s) (k~_s . f_t)     eq:5.1
        std::vector<std::vector<cd>> beta(t1 - t0, std::vector<cd>(M, 0.0));
        for (std::size_t t = t0; t < t1; ++t) {
            std::vector<cd> kappa(M, 0.0);
            for (std::size_t n = 0; n < M; ++n) {
                cd carried = 0;
                for (std::size_t r = 0; r < R; ++r) carried += h(n, r) * f(t, r);
                kappa[n] = pw(n, t - t0 + 1) * carried;
            }
            for (std::size_t s = t0; s <= t; ++s) {
                double score = 0;  // the intra-chunk score k~_s . f_t, a K x K lower triangle
                for (std::size_t r = 0; r < R; ++r) score += z(s, r) * f(t, r);
                for (std::size_t n = 0; n < M; ++n) kappa[n] += pw(n, t - s) * cp.b(n) * score;
            }
            for (std::size_t i = 0; i < M; ++i)
                for (std::size_t n = 0; n < M; ++n) beta[t - t0][i] += g(i, n) * kappa[n];  // beta_t = G kappa_t
        }
        // Pass 2: o_t = Re beta_t^H D_t H^v + sum_{t0 <= s <= t} W_ts v~_s,
        //         W_ts = Re sum_n conj(beta_t[n]) psi_n(t - s)     eq:5.1
        for (std::size_t t = t0; t < t1; ++t) {
            const std::vector<cd>& bt = beta[t - t0];
            for (std::size_t n = 0; n < M; ++n) {
                const cd w = std::conj(bt[n]) * pw(n, t - t0 + 1);
                for (std::size_t j = 0; j < d; ++j) out(t, j) += (w * h(n, R + j)).real();
            }
            for (std::size_t s = t0; s <= t; ++s) {
                double wts = 0;
                for (std::size_t n = 0; n < M; ++n) wts += (std::conj(bt[n]) * pw(n, t - s) * cp.b(n)).real();
                for (std::size_t j = 0; j < d; ++j) out(t, j) += wts * z(s, R + j);
            }
        }
        // The carried state: H <- Lambda^(t1 - t0) H + sum_s Lambda^(t1 - 1 - s) B z_s^T     eq:5.1
        for (std::size_t n = 0; n < M; ++n)
            for (std::size_t p = 0; p < P; ++p) {
                cd next = pw(n, t1 - t0) * h(n, p);
                for (std::size_t s = t0; s < t1; ++s) next += pw(n, t1 - 1 - s) * cp.b(n) * z(s, p);
                h(n, p) = next;
            }
    }
    return out;
}

LMat core_forward(const CoreParams& cp, const LMat& f, const LMat& z, const LayerOptions& opt) {
    switch (opt.form) {
        case LayerForm::Recurrence: return core_forward_recurrence(cp, f, z);
        case LayerForm::Folded: return core_forward_folded(cp, f, z);
        case LayerForm::Chunked: return core_forward_chunked(cp, f, z, opt.chunk);
    }
    throw Error("core_forward: unknown form");
}

CoreGrads core_backward(const CoreParams& cp, const LMat& f, const LMat& z, const LMat& dout,
                        const LayerOptions& opt) {
    require_core_shapes(cp, f, z);
    const std::size_t N = z.shape(0), M = cp.lambda.size(), P = z.shape(1), R = f.shape(1), d = P - R;
    const bool divide = opt.backward == LayerBackward::LambdaDivision;
    if (divide) {
        if (opt.checkpoint == 0) throw Error("core_backward: the checkpoint interval K must be >= 1, got 0");
        for (std::size_t m = 0; m < M; ++m)
            if (cp.lambda(m) == cd(0))
                throw Error("core_backward: Lambda(" + std::to_string(m) +
                            ") = 0 (Delta A underflows exp), so the Lambda-division backward cannot divide by it; "
                            "use the stored-states backward");
    }
    CoreGrads g{LMat(xt::zeros<double>({N, R})), LMat(xt::zeros<double>({N, P})), CVec(xt::zeros<cd>({M})),
                CVec(xt::zeros<cd>({M})), cmat(M, M)};
    // The states: every one kept (stored), or checkpoints and division.
    const CStates all = divide ? CStates() : core_states(cp, z);
    const auto kept = divide ? checkpoints(cp, z, opt.checkpoint) : std::map<std::size_t, CMat>{};
    auto state = [&](std::size_t t) { return CMat(xt::view(all, t)); };

    CMat x = divide ? kept.at(N - 1) : state(N - 1);  // X_t, walking t = N-1 .. 0
    CMat adj = cmat(M, P);                              // G_{t+1}, the adjoint state
    for (std::size_t t = N; t-- > 0;) {
        const CMat prev = divide ? previous_state(cp, z, t, x, kept) : (t ? state(t - 1) : cmat(M, P));
        // The readout's backward at token t (eq:5.grad-readout):
        CMat y = cmat(M, P);
        for (std::size_t m = 0; m < M; ++m)
            for (std::size_t p = 0; p < P; ++p)
                for (std::size_t n = 0; n < M; ++n) y(m, p) += cp.c(m, n) * x(n, p);  // [U | Gamma] = C X
        CMat gy = cmat(M, P);  // dL/d[U | Gamma]
        for (std::size_t m = 0; m < M; ++m) {
            cd a = 0;
            for (std::size_t r = 0; r < R; ++r) a += f(t, r) * std::conj(y(m, r));
            cd ga = 0;  // dL/da_m = sum_j do_j conj(Gamma[m, j])
            for (std::size_t j = 0; j < d; ++j) ga += dout(t, j) * std::conj(y(m, R + j));
            for (std::size_t j = 0; j < d; ++j) gy(m, R + j) = dout(t, j) * std::conj(a);  // dL/dGamma = do conj(a)
            for (std::size_t r = 0; r < R; ++r) {
                g.df(t, r) += (ga * y(m, r)).real();   // dL/df_r = Re sum_m g_a U[m, r]
                gy(m, r) = f(t, r) * std::conj(ga);    // dL/dU[m, r] = f_r conj(g_a)
            }
        }
        // dL/dC += g_Y X^H,  dL/dX_t (direct) = C^H g_Y     eq:5.grad-readout
        for (std::size_t m = 0; m < M; ++m)
            for (std::size_t n = 0; n < M; ++n)
                for (std::size_t p = 0; p < P; ++p) g.dc(m, n) += gy(m, p) * std::conj(x(n, p));
        // The adjoint recurrence G_t = C^H g_Y + conj(Lambda) (.) G_{t+1}     eq:5.adjoint
        for (std::size_t n = 0; n < M; ++n)
            for (std::size_t p = 0; p < P; ++p) {
                cd direct = 0;
                for (std::size_t m = 0; m < M; ++m) direct += std::conj(cp.c(m, n)) * gy(m, p);
                adj(n, p) = direct + std::conj(cp.lambda(n)) * adj(n, p);
            }
        // dL/dB_m += sum_p G_t[m, p] z_t[p],  dL/dz_t[p] = Re sum_m conj(G_t[m, p]) B_m,
        // dL/dLambda_m += sum_p G_t[m, p] conj(X_{t-1}[m, p])     eq:5.adjoint
        for (std::size_t m = 0; m < M; ++m)
            for (std::size_t p = 0; p < P; ++p) {
                g.db(m) += adj(m, p) * z(t, p);
                g.dz(t, p) += (std::conj(adj(m, p)) * cp.b(m)).real();
                g.dlambda(m) += adj(m, p) * std::conj(prev(m, p));
            }
        x = prev;
    }
    return g;
}

}  // namespace idattn::ref
