// Chapter 5, the token-wise maps around the recurrence, each with its backward
// (internal to ref/05-learned-layer; chapters/05-learned-layer.md, section 5.6).
//
// Every map works on one sequence: an (N, H*w) array, channel c of head c / w.
// A backward takes the forward's input and the upstream gradient gy, returns
// the gradient of the input and adds the gradients of its parameters into the
// arrays passed by reference (which must have the parameters' shapes).
#pragma once

#include <cstddef>

#include "ref/05-learned-layer/layer.hpp"

namespace idattn::ref::maps {

// y = x W (x (N, Din), W (Din, Dout)).
LMat linear(const LMat& x, const LMat& w);
LMat linear_backward(const LMat& x, const LMat& w, const LMat& gy, LMat& gw);

// eq:5.conv  y_t[c] = sum_{j=0..3} conv[c, j] x_{t-3+j}[c], zero before t = 0.
LMat short_conv(const LMat& x, const LMat& conv);
LMat short_conv_backward(const LMat& x, const LMat& conv, const LMat& gy, LMat& gconv);

// eq:5.rope  rotate-half RoPE on each head's w channels (w even), angle
// t * 10000^(-2i/w) for the pair (i, i + w/2), row n at position t = offset + n.
// inverse = the rotation by -angle, which is also the backward (a rotation's
// transpose is its inverse).
LMat rope(const LMat& x, std::size_t H, bool inverse, std::size_t offset = 0);

// SiLU(u) = u sigma(u) and its derivative.
double silu(double u);
double silu_prime(double u);

// eq:P10  xi(u) = s / sqrt(|s|^2 + 1e-6), s = SiLU(u), per head and token.
LMat feature_map(const LMat& x, std::size_t H);
LMat feature_map_backward(const LMat& x, std::size_t H, const LMat& gy);

// eq:P12  N+b: y = g (.) x / sqrt(mean(x^2) + 1e-6) + b per head and token;
// g, b (H, w).
LMat norm_bias(const LMat& x, const LMat& g, const LMat& b);
LMat norm_bias_backward(const LMat& x, const LMat& g, const LMat& gy, LMat& gg, LMat& gb);

// eq:5.softmax  causal softmax weights of one head with scale 1/sqrt(R): q (n, R)
// are the last n of the t = k.rows positions (bottom-right aligned), query i sees
// keys s <= t - n + i; P (n, t), zero above the causal boundary. n = t: the
// whole sequence; n < t: a decoder's queries against its KV cache (chapter 6).
LMat causal_softmax(const LMat& q, const LMat& k);

// eq:5.out  the gate o (.) SiLU(x W_g): y = o (.) SiLU(gl), gl = x W_g.
LMat gate(const LMat& o, const LMat& gl);
void gate_backward(const LMat& o, const LMat& gl, const LMat& gy, LMat& go, LMat& ggl);

}  // namespace idattn::ref::maps
