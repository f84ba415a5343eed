// Chapter 5: the token-wise maps of the learned layer and their backward passes,
// literal loops, one formula per line (chapters/05-learned-layer.md, 5.1 and 5.6).
#include "ref/05-learned-layer/layer_maps.hpp"

#include <cmath>

#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xview.hpp>

namespace idattn::ref::maps {

namespace {

constexpr double kEps = 1e-6;  // the epsilon of eq:P10 and eq:P12 (chapter 5's contract)

LMat zeros_like(const LMat& x) { return LMat(xt::zeros<double>(x.shape())); }

}  // namespace

LMat linear(const LMat& x, const LMat& w) { return xt::linalg::dot(x, w); }

LMat linear_backward(const LMat& x, const LMat& w, const LMat& gy, LMat& gw) {
    gw += xt::linalg::dot(xt::transpose(x), gy);  // dL/dW = x^T gy
    return xt::linalg::dot(gy, xt::transpose(w));  // dL/dx = gy W^T
}

LMat short_conv(const LMat& x, const LMat& conv) {
    const std::size_t N = x.shape(0), C = x.shape(1), W = conv.shape(1);
    LMat y = zeros_like(x);
    for (std::size_t t = 0; t < N; ++t)
        for (std::size_t c = 0; c < C; ++c)
            for (std::size_t j = 0; j < W; ++j) {
                // y_t[c] = sum_j conv[c, j] x_{t-(W-1)+j}[c], zero before t = 0     eq:5.conv
                if (t + j + 1 < W) continue;
                y(t, c) += conv(c, j) * x(t + j + 1 - W, c);
            }
    return y;
}

LMat short_conv_backward(const LMat& x, const LMat& conv, const LMat& gy, LMat& gconv) {
    const std::size_t N = x.shape(0), C = x.shape(1), W = conv.shape(1);
    LMat gx = zeros_like(x);
    for (std::size_t t = 0; t < N; ++t)
        for (std::size_t c = 0; c < C; ++c)
            for (std::size_t j = 0; j < W; ++j) {
                if (t + j + 1 < W) continue;
                const std::size_t s = t + j + 1 - W;  // eq:5.conv read backwards
                gx(s, c) += conv(c, j) * gy(t, c);
                gconv(c, j) += x(s, c) * gy(t, c);
            }
    return gx;
}

LMat rope(const LMat& x, std::size_t H, bool inverse, std::size_t offset) {
    const std::size_t N = x.shape(0), w = x.shape(1) / H, half = w / 2;
    LMat y = x;
    for (std::size_t t = 0; t < N; ++t)
        for (std::size_t h = 0; h < H; ++h)
            for (std::size_t i = 0; i < half; ++i) {
                // theta = t * 10000^(-2i/w); the pair (i, i + w/2) rotates by theta     eq:5.rope
                const double theta = double(offset + t) * std::pow(10000.0, -2.0 * double(i) / double(w));
                const double c = std::cos(theta), s = inverse ? -std::sin(theta) : std::sin(theta);
                const double u1 = x(t, h * w + i), u2 = x(t, h * w + i + half);
                y(t, h * w + i) = u1 * c - u2 * s;
                y(t, h * w + i + half) = u2 * c + u1 * s;
            }
    return y;
}

double silu(double u) { return u / (1.0 + std::exp(-u)); }

double silu_prime(double u) {
    const double sigma = 1.0 / (1.0 + std::exp(-u));
    return sigma * (1.0 + u * (1.0 - sigma));
}

LMat feature_map(const LMat& x, std::size_t H) {
    const std::size_t N = x.shape(0), w = x.shape(1) / H;
    LMat y = zeros_like(x);
    for (std::size_t t = 0; t < N; ++t)
        for (std::size_t h = 0; h < H; ++h) {
            double sumsq = 0;
            for (std::size_t r = 0; r < w; ++r) sumsq += silu(x(t, h * w + r)) * silu(x(t, h * w + r));
            const double n = std::sqrt(sumsq + kEps);
            // xi(u) = SiLU(u) / sqrt(|SiLU(u)|^2 + 1e-6)     eq:P10
            for (std::size_t r = 0; r < w; ++r) y(t, h * w + r) = silu(x(t, h * w + r)) / n;
        }
    return y;
}

LMat feature_map_backward(const LMat& x, std::size_t H, const LMat& gy) {
    const std::size_t N = x.shape(0), w = x.shape(1) / H;
    LMat gx = zeros_like(x);
    for (std::size_t t = 0; t < N; ++t)
        for (std::size_t h = 0; h < H; ++h) {
            double sumsq = 0;
            for (std::size_t r = 0; r < w; ++r) sumsq += silu(x(t, h * w + r)) * silu(x(t, h * w + r));
            const double n = std::sqrt(sumsq + kEps);
            double xi_dot_g = 0;  // xi . gy
            for (std::size_t r = 0; r < w; ++r) xi_dot_g += silu(x(t, h * w + r)) / n * gy(t, h * w + r);
            for (std::size_t r = 0; r < w; ++r) {
                const double u = x(t, h * w + r);
                // dL/ds = (gy - xi (xi . gy)) / n, then dL/du = dL/ds SiLU'(u)     eq:5.grad-maps
                const double gs = (gy(t, h * w + r) - silu(u) / n * xi_dot_g) / n;
                gx(t, h * w + r) = gs * silu_prime(u);
            }
        }
    return gx;
}

LMat norm_bias(const LMat& x, const LMat& g, const LMat& b) {
    const std::size_t N = x.shape(0), H = g.shape(0), w = g.shape(1);
    LMat y = zeros_like(x);
    for (std::size_t t = 0; t < N; ++t)
        for (std::size_t h = 0; h < H; ++h) {
            double mean_sq = 0;
            for (std::size_t r = 0; r < w; ++r) mean_sq += x(t, h * w + r) * x(t, h * w + r) / double(w);
            const double rms = std::sqrt(mean_sq + kEps);
            // y = g (.) x / sqrt(mean(x^2) + 1e-6) + b     eq:P12
            for (std::size_t r = 0; r < w; ++r) y(t, h * w + r) = g(h, r) * x(t, h * w + r) / rms + b(h, r);
        }
    return y;
}

LMat norm_bias_backward(const LMat& x, const LMat& g, const LMat& gy, LMat& gg, LMat& gb) {
    const std::size_t N = x.shape(0), H = g.shape(0), w = g.shape(1);
    LMat gx = zeros_like(x);
    for (std::size_t t = 0; t < N; ++t)
        for (std::size_t h = 0; h < H; ++h) {
            double mean_sq = 0;
            for (std::size_t r = 0; r < w; ++r) mean_sq += x(t, h * w + r) * x(t, h * w + r) / double(w);
            const double rms = std::sqrt(mean_sq + kEps);
            double x_dot_gn = 0;  // x . dL/d(x / rms)
            for (std::size_t r = 0; r < w; ++r) x_dot_gn += x(t, h * w + r) * gy(t, h * w + r) * g(h, r);
            for (std::size_t r = 0; r < w; ++r) {
                const double xr = x(t, h * w + r), gyr = gy(t, h * w + r);
                gg(h, r) += gyr * xr / rms;
                gb(h, r) += gyr;
                // n = x / rms: dL/dx = (dL/dn - x (x . dL/dn) / (w rms^2)) / rms     eq:5.grad-maps
                gx(t, h * w + r) = (gyr * g(h, r) - xr * x_dot_gn / (double(w) * rms * rms)) / rms;
            }
        }
    return gx;
}

LMat causal_softmax(const LMat& q, const LMat& k) {
    const std::size_t n = q.shape(0), t = k.shape(0), R = q.shape(1);
    LMat pr = xt::zeros<double>({n, t});
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t last = t - n + i;  // the query's own position
        double mx = -INFINITY, sum = 0;
        for (std::size_t s = 0; s <= last; ++s) {
            double dot = 0;
            for (std::size_t r = 0; r < R; ++r) dot += q(i, r) * k(s, r);
            pr(i, s) = dot / std::sqrt(double(R));  // q . k / sqrt(R)     eq:5.softmax
            mx = std::max(mx, pr(i, s));
        }
        for (std::size_t s = 0; s <= last; ++s) sum += (pr(i, s) = std::exp(pr(i, s) - mx));
        for (std::size_t s = 0; s <= last; ++s) pr(i, s) /= sum;
    }
    return pr;
}

LMat gate(const LMat& o, const LMat& gl) {
    LMat y = zeros_like(o);
    // o (.) SiLU(x W_g)     eq:5.out
    for (std::size_t i = 0; i < o.size(); ++i) y.flat(i) = o.flat(i) * silu(gl.flat(i));
    return y;
}

void gate_backward(const LMat& o, const LMat& gl, const LMat& gy, LMat& go, LMat& ggl) {
    go = zeros_like(o);
    ggl = zeros_like(o);
    for (std::size_t i = 0; i < o.size(); ++i) {
        go.flat(i) = gy.flat(i) * silu(gl.flat(i));
        ggl.flat(i) = gy.flat(i) * o.flat(i) * silu_prime(gl.flat(i));
    }
}

}  // namespace idattn::ref::maps
