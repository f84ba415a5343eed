// Chapter 4 through the api layer (CLI `idattn ssm` and `idattn ssm-attention`,
// Python `idattn.ssm_parameters`, `idattn.ssm_impulse_response`,
// `idattn.ssm_states`, `idattn.legs_states`, `idattn.ssm_attention`,
// `idattn.ssm_attention_features`).
//
// Complex values (the S4D and damped Fourier states, Lambda, Bbar, the basis
// psi) leave the api as real tensors with a trailing axis of 2: [..., 0] is the
// real part, [..., 1] the imaginary part (api/common/npy writes float32 and
// float64 only; the Python wrappers turn them back into complex arrays).
#pragma once

#include <cstddef>
#include <string>

#include "ref/02-kernel-feature-map/feature_map.hpp"
#include "ref/04-ssm-basis-recurrence/ssm.hpp"
#include "api/common/dispatch.hpp"

namespace idattn::api {

// Which diagonal SSM basis: S4D (eq:P11 with eq:4.s4d-inv or eq:4.s4d-lin and the
// zero-order hold eq:4.zoh) or the damped Fourier basis of eq:4.6 (M = L).
enum class SsmBasis { S4d, Fourier };
SsmBasis parse_ssm_basis(const std::string& name);  // "s4d", "fourier"
std::string ssm_basis_name(SsmBasis b);

struct SsmSpec {
    SsmBasis basis = SsmBasis::S4d;
    ref::S4dInit init = ref::S4dInit::Inv;  // S4D only
    std::size_t M = 64;                     // S4D only: number of states
    double delta = 0.01;                    // S4D only: the step Delta (> 0)
    std::size_t L = 64;                     // fourier only: the period L = number of states
    double alpha = 0.0;                     // fourier only: the damping alpha (>= 0)
};

// The discrete parameters Lambda, Bbar of the spec, float64. Throws
// idattn::Error on M = 0, Delta <= 0, L = 0, alpha < 0, non-finite values.
ref::DiagonalSsm<double> ssm_parameters(const SsmSpec& spec);

// Lambda and Bbar as (M, 2) real tensors (real, imaginary), float64.
struct SsmParamsRun {
    HostTensor lambda, bbar;
};
SsmParamsRun ssm_parameters_tensors(const SsmSpec& spec);

// The basis psi (N, M, 2): psi[tau][m] = Lambda_m^tau Bbar_m (eq:4.psi), float64.
Run ssm_impulse_response(const SsmSpec& spec, std::size_t N);

// The states after every token, x (N, M, C, 2) for z (N, C), in the form
// recurrence | explicit | fft | chunked (eq:P11, eq:4.3, eq:4.4, eq:4.5; `chunk`
// is the chunk size K of the chunked form). Impl ref (float64) or naive32 (the
// same formula in float32) or fast (the CUDA chunked scan or cuFFT, float32;
// without a device, or for the explicit form, the reference with a note).
Run ssm_states(const HostTensor& z, const SsmSpec& spec, ref::SsmForm form, std::size_t chunk, Impl impl);

// The HiPPO-LegS states c(t), t = 1..N, (N, M, C) for z (N, C), float64 only:
// the exact update (eq:4.1, eq:4.first) or forward Euler / bilinear in tau = log t
// with `substeps` sub-steps per token (eq:4.2). Chapter 3's coefficients are
// sqrt(t) c(t) (eq:4.scale).
Run legs_states(const HostTensor& z, std::size_t M, ref::LegsMethod method, std::size_t substeps);

// Causal interdomain attention over a diagonal SSM basis (eq:4.readout) on given
// features: fq (Nq, R), fk (N, R), v (N, d), or the same with leading (B, H);
// query i sits at position i + N - Nq. The states come from `form`.
Run ssm_attention_features(const HostTensor& fq, const HostTensor& fk, const HostTensor& v, const SsmSpec& spec,
                           ref::SsmForm form, std::size_t chunk, Impl impl);

// The same from q, k, v with the feature map `map` and draw W of chapter 2
// (W shared by every head; empty for taylor), features stabilised as in
// chapter 3's `interdomain_attention` (eq:2.stab: the constants cancel in the ratio).
Run ssm_attention(const HostTensor& q, const HostTensor& k, const HostTensor& v, ref::FeatureMap map,
                  const HostTensor& w, const SsmSpec& spec, ref::SsmForm form, std::size_t chunk, Impl impl);

}  // namespace idattn::api
