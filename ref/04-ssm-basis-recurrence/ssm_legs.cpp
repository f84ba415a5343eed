// Chapter 4 reference, HiPPO-LegS side (ideal derivation, double only).
// Equation labels refer to chapters/04-ssm-basis-recurrence.md.
#include <algorithm>
#include <cmath>
#include <sstream>

#include <xtensor-blas/xlinalg.hpp>

#include "core/error.hpp"
#include "core/validate.hpp"
#include "ref/04-ssm-basis-recurrence/ssm.hpp"

namespace idattn::ref {

namespace {

using Mat = xt::xtensor<double, 2>;
using Vec = xt::xtensor<double, 1>;

Mat identity(std::size_t n) {
    Mat e = xt::zeros<double>({n, n});
    for (std::size_t i = 0; i < n; ++i) e(i, i) = 1;
    return e;
}

Mat matmul(const Mat& a, const Mat& b) {
    const std::size_t n = a.shape(0), k = a.shape(1), m = b.shape(1);
    Mat c = xt::zeros<double>({n, m});
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t p = 0; p < k; ++p) {
            const double aip = a(i, p);
            for (std::size_t j = 0; j < m; ++j) c(i, j) += aip * b(p, j);
        }
    return c;
}

double norm_inf(const Mat& a) {  // largest absolute row sum
    double best = 0;
    for (std::size_t i = 0; i < a.shape(0); ++i) {
        double row = 0;
        for (std::size_t j = 0; j < a.shape(1); ++j) row += std::abs(a(i, j));
        best = std::max(best, row);
    }
    return best;
}

// Solves D X = N for X by Gaussian elimination with partial pivoting (D square).
Mat solve(Mat d, Mat x) {
    const std::size_t n = d.shape(0), m = x.shape(1);
    for (std::size_t col = 0; col < n; ++col) {
        std::size_t piv = col;
        for (std::size_t r = col + 1; r < n; ++r)
            if (std::abs(d(r, col)) > std::abs(d(piv, col))) piv = r;
        if (d(piv, col) == 0) throw Error("expm: the Pade denominator is singular");
        for (std::size_t j = 0; j < n; ++j) std::swap(d(col, j), d(piv, j));
        for (std::size_t j = 0; j < m; ++j) std::swap(x(col, j), x(piv, j));
        for (std::size_t r = col + 1; r < n; ++r) {
            const double f = d(r, col) / d(col, col);
            for (std::size_t j = col; j < n; ++j) d(r, j) -= f * d(col, j);
            for (std::size_t j = 0; j < m; ++j) x(r, j) -= f * x(col, j);
        }
    }
    for (std::size_t col = n; col-- > 0;) {
        for (std::size_t j = 0; j < m; ++j) {
            double s = x(col, j);
            for (std::size_t k = col + 1; k < n; ++k) s -= d(col, k) * x(k, j);
            x(col, j) = s / d(col, col);
        }
    }
    return x;
}

// Solves L y = r for a lower-triangular L (forward substitution).
Vec forward_substitution(const Mat& l, const Vec& r) {
    const std::size_t n = l.shape(0);
    Vec y = xt::zeros<double>({n});
    for (std::size_t i = 0; i < n; ++i) {
        double s = r(i);
        for (std::size_t k = 0; k < i; ++k) s -= l(i, k) * y(k);
        y(i) = s / l(i, i);
    }
    return y;
}

void check_legs_input(const std::string& what, std::size_t M, const xt::xtensor<double, 2>& z) {
    if (M == 0) throw Error(what + ": the number of basis functions M must be at least 1, got 0");
    const std::vector<std::size_t> shape{z.shape(0), z.shape(1)};
    require_sane_size(what, "z", shape);
    require_finite(what, "z", z.data(), shape);
}

}  // namespace

// ---- LegS matrices -------------------------------------------------------------------

xt::xtensor<double, 2> legs_a(std::size_t M) {
    if (M == 0) throw Error("legs_a: the number of basis functions M must be at least 1, got 0");
    Mat a = xt::zeros<double>({M, M});
    for (std::size_t n = 0; n < M; ++n)
        for (std::size_t k = 0; k <= n; ++k)
            // A_nk = sqrt(2n+1) sqrt(2k+1) (n > k), n + 1 (n = k), 0 (n < k)      eq:4.legs eq:P2
            a(n, k) = n > k ? std::sqrt(2.0 * n + 1) * std::sqrt(2.0 * k + 1) : double(n + 1);
    return a;
}

xt::xtensor<double, 1> legs_b(std::size_t M) {
    if (M == 0) throw Error("legs_b: the number of basis functions M must be at least 1, got 0");
    Vec b = xt::zeros<double>({M});
    for (std::size_t n = 0; n < M; ++n) b(n) = std::sqrt(2.0 * n + 1);  // B_n = sqrt(2n+1)   eq:4.legs
    return b;
}

// ---- Matrix exponential -----------------------------------------------------------------

xt::xtensor<double, 2> expm(const xt::xtensor<double, 2>& x) {
    if (x.shape(0) != x.shape(1) || x.shape(0) == 0)
        throw Error("expm: X must be square and non-empty, got shape " + shape_str({x.shape(0), x.shape(1)}));
    require_finite("expm", "X", x.data(), {x.shape(0), x.shape(1)});
    const std::size_t n = x.shape(0);
    // Scaling: X / 2^j with ||X / 2^j||_inf <= 1/2 (Golub & Van Loan, Alg. 9.3.1).
    const double nrm = norm_inf(x);
    int j = 0;
    if (nrm > 0) j = std::max(0, 1 + static_cast<int>(std::floor(std::log2(nrm))));
    const Mat xs = x / std::ldexp(1.0, j);
    // [q/q] Pade: N = sum_k c_k X^k, D = sum_k (-1)^k c_k X^k,
    // c_k = c_{k-1} (q - k + 1) / ((2q - k + 1) k); q = 8 keeps the truncation
    // below 1e-20 for ||X|| <= 1/2, far under double rounding.
    const int q = 8;
    double c = 1;
    Mat num = identity(n), den = identity(n), power = identity(n);
    for (int k = 1; k <= q; ++k) {
        c = c * (q - k + 1) / ((2.0 * q - k + 1) * k);
        power = matmul(xs, power);
        num += c * power;
        den += (k % 2 ? -c : c) * power;
    }
    Mat e = solve(den, num);  // D^{-1} N ~ exp(X / 2^j)
    // Squaring: exp(X) = exp(X / 2^j)^(2^j).
    for (int s = 0; s < j; ++s) e = matmul(e, e);
    return e;
}

xt::xtensor<double, 1> legs_ti_impulse(std::size_t M, double t) {
    if (!(t >= 0) || !std::isfinite(t)) throw Error("legs_ti_impulse: t must be finite and >= 0, got " + num_str(t));
    return xt::linalg::dot(expm(-t * legs_a(M)), legs_b(M));  // x(t) = exp(-A t) B     eq:4.ti-legs
}

xt::xtensor<double, 1> legs_warped_basis(std::size_t M, double t) {
    if (M == 0) throw Error("legs_warped_basis: M must be at least 1, got 0");
    const double x = 2.0 * std::exp(-t) - 1.0;
    xt::xtensor<double, 1> p = xt::zeros<double>({M}), out = xt::zeros<double>({M});
    for (std::size_t n = 0; n < M; ++n)  // Legendre: (n+1) P_{n+1} = (2n+1) x P_n - n P_{n-1}
        p(n) = n == 0 ? 1.0 : n == 1 ? x : ((2.0 * n - 1) * x * p(n - 1) - (n - 1.0) * p(n - 2)) / double(n);
    // sqrt(2n+1) P_n(2 e^-t - 1) e^-t     eq:4.ti-legs
    for (std::size_t n = 0; n < M; ++n) out(n) = std::sqrt(2.0 * n + 1) * p(n) * std::exp(-t);
    return out;
}

xt::xtensor<double, 1> legs_normal_frequencies(std::size_t N) {
    if (N < 2 || N % 2 != 0)
        throw Error("legs_normal_frequencies: the state size N must be even and >= 2, got " + std::to_string(N));
    const Mat a = legs_a(N);
    Mat s = a;
    for (std::size_t n = 0; n < N; ++n)
        for (std::size_t k = 0; k < N; ++k)  // S = A - P P^T - I/2, P_n = sqrt(n + 1/2)     eq:4.normal
            s(n, k) -= std::sqrt(n + 0.5) * std::sqrt(k + 0.5) + (n == k ? 0.5 : 0.0);
    // S is skew-symmetric: S^2 = -S^T S is symmetric with eigenvalues -omega^2, each twice
    const Mat s2 = xt::linalg::dot(s, s);
    const xt::xtensor<double, 1> lam = std::get<0>(xt::linalg::eigh(s2));  // ascending: -omega^2 descending in omega
    xt::xtensor<double, 1> omega = xt::zeros<double>({N / 2});
    for (std::size_t i = 0; i < N / 2; ++i) omega(i) = std::sqrt(std::max(0.0, -lam(2 * i)));
    return omega;
}

LegsStep legs_exact_step(const xt::xtensor<double, 2>& a, const xt::xtensor<double, 1>& b, double dtau) {
    const std::size_t M = a.shape(0);
    if (a.shape(1) != M || b.shape(0) != M || M == 0)
        throw Error("legs_exact_step: A has shape " + shape_str({a.shape(0), a.shape(1)}) + " and B has shape " +
                    shape_str({b.shape(0)}) + "; expected (M, M) and (M,) with M >= 1");
    if (!(dtau >= 0) || !std::isfinite(dtau))
        throw Error("legs_exact_step: the step dtau must be finite and >= 0, got " + std::to_string(dtau));
    // Van Loan's block matrix: exp([[-A dtau, B dtau], [0, 0]]) = [[E, F], [0, 1]]
    // with E = exp(-A dtau) and F = int_0^dtau exp(-A s) ds B. This gives the
    // input integral A^{-1} (I - E) B without inverting A (which would lose
    // accuracy when A dtau is small: I - E cancels).                          eq:4.1 eq:4.vanloan
    Mat big = xt::zeros<double>({M + 1, M + 1});
    for (std::size_t r = 0; r < M; ++r) {
        for (std::size_t k = 0; k < M; ++k) big(r, k) = -a(r, k) * dtau;
        big(r, M) = b(r) * dtau;
    }
    const Mat ex = expm(big);
    LegsStep step{xt::zeros<double>({M, M}), xt::zeros<double>({M})};
    for (std::size_t r = 0; r < M; ++r) {
        for (std::size_t k = 0; k < M; ++k) step.e(r, k) = ex(r, k);
        step.f(r) = ex(r, M);
    }
    return step;
}

// ---- LegS states ------------------------------------------------------------------------

std::string legs_method_name(LegsMethod m) {
    switch (m) {
        case LegsMethod::Exact: return "exact";
        case LegsMethod::Euler: return "euler";
        case LegsMethod::Bilinear: return "bilinear";
    }
    return "?";
}

xt::xtensor<double, 3> legs_states(LegsMethod method, std::size_t M, const xt::xtensor<double, 2>& z,
                                   std::size_t substeps) {
    check_legs_input("legs_states", M, z);
    if (substeps == 0) throw Error("legs_states: the number of sub-steps per token must be at least 1, got 0");
    const std::size_t N = z.shape(0), C = z.shape(1);
    const Mat a = legs_a(M);
    const Vec b = legs_b(M);
    xt::xtensor<double, 3> out = xt::zeros<double>({N, M, C});
    Mat c = xt::zeros<double>({M, C});

    // First token, t from 0 to 1: tau runs from -inf to 0, exp(-A dtau) -> 0
    // (A is lower triangular with eigenvalues 1..M), so c(1) = A^{-1} B z_0.
    // A e_0 = B, hence A^{-1} B = e_0: c(1) = z_0 e_0, the mean of the
    // constant signal on [0, 1].                                               eq:4.first eq:4.1
    const Vec first = forward_substitution(a, b);
    for (std::size_t m = 0; m < M; ++m)
        for (std::size_t ch = 0; ch < C; ++ch) c(m, ch) = first(m) * z(0, ch);
    for (std::size_t m = 0; m < M; ++m)
        for (std::size_t ch = 0; ch < C; ++ch) out(0, m, ch) = c(m, ch);

    for (std::size_t n = 1; n < N; ++n) {
        // Token n holds on [n, n+1): tau = log t moves by log((n+1)/n).       eq:4.tau
        const double dtau = std::log1p(1.0 / double(n));
        if (method == LegsMethod::Exact) {
            // c <- exp(-A dtau) c + int_0^dtau exp(-A s) ds B z_n              eq:4.1
            const LegsStep step = legs_exact_step(a, b, dtau);
            Mat next = xt::zeros<double>({M, C});
            for (std::size_t r = 0; r < M; ++r)
                for (std::size_t ch = 0; ch < C; ++ch) {
                    double s = step.f(r) * z(n, ch);
                    for (std::size_t k = 0; k < M; ++k) s += step.e(r, k) * c(k, ch);
                    next(r, ch) = s;
                }
            c = next;
        } else {
            const double h = dtau / double(substeps);
            // Bilinear: (I + hA/2) c' = (I - hA/2) c + h B z, I + hA/2 lower triangular.   eq:4.2
            Mat lhs = identity(M);
            if (method == LegsMethod::Bilinear) lhs += (h / 2) * a;
            for (std::size_t s = 0; s < substeps; ++s) {
                Mat next = xt::zeros<double>({M, C});
                for (std::size_t ch = 0; ch < C; ++ch) {
                    Vec rhs = xt::zeros<double>({M});
                    for (std::size_t r = 0; r < M; ++r) {
                        double ac = 0;  // (A c)_r
                        for (std::size_t k = 0; k <= r; ++k) ac += a(r, k) * c(k, ch);
                        const double w = method == LegsMethod::Euler ? h : h / 2;
                        // Euler: c' = c + h (-A c + B z)                                  eq:4.2
                        rhs(r) = c(r, ch) - w * ac + h * b(r) * z(n, ch);
                    }
                    const Vec sol = method == LegsMethod::Euler ? rhs : forward_substitution(lhs, rhs);
                    for (std::size_t r = 0; r < M; ++r) next(r, ch) = sol(r);
                }
                c = next;
            }
        }
        for (std::size_t m = 0; m < M; ++m)
            for (std::size_t ch = 0; ch < C; ++ch) out(n, m, ch) = c(m, ch);
    }
    return out;
}

xt::xtensor<double, 2> legs_attention(std::size_t M, const xt::xtensor<double, 2>& fq, const xt::xtensor<double, 2>& fk,
                                      const xt::xtensor<double, 2>& v) {
    check_ssm_attention_inputs("legs_attention", {fq.shape(0), fq.shape(1)}, {fk.shape(0), fk.shape(1)},
                               {v.shape(0), v.shape(1)});
    require_finite("legs_attention", "query features", fq.data(), {fq.shape(0), fq.shape(1)});
    const std::size_t nq = fq.shape(0), N = fk.shape(0), R = fq.shape(1), d = v.shape(1);
    // One recurrence for all R + d + 1 channels [xi(k_t), v_t, 1].            eq:4.channels
    const xt::xtensor<double, 3> c = legs_states(LegsMethod::Exact, M, ssm_channels<double>(fk, v));
    Mat o = xt::zeros<double>({nq, d});
    for (std::size_t i = 0; i < nq; ++i) {
        const std::size_t p = i + N - nq;
        // a_m = xi(q_i)^T u_m, o_i = sum_m a_m gamma_m / sum_m a_m eta_m; the
        // factor sqrt(t) between c and chapter 3's u cancels.                 eq:P9 eq:4.scale
        double den = 0;
        std::vector<double> num(d, 0);
        for (std::size_t m = 0; m < M; ++m) {
            double am = 0;
            for (std::size_t r = 0; r < R; ++r) am += fq(i, r) * c(p, m, r);
            for (std::size_t col = 0; col < d; ++col) num[col] += am * c(p, m, R + col);
            den += am * c(p, m, R + d);
        }
        for (std::size_t col = 0; col < d; ++col) o(i, col) = num[col] / den;
    }
    return o;
}

}  // namespace idattn::ref
