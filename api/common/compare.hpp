// The project's pass rule (FlashAttention's; README.md, "Conventions",
// Tolerances):
//
//     err(fast) <= 2 * err(naive32) + floor
//
// err(x) is the relative RMS error of x against the float64 reference,
// sqrt(sum (x - ref)^2 / sum ref^2); naive32 is the same formula evaluated
// plainly in float32; floor = floor_ulps * FLT_EPSILON (a few float32 ulps of
// the output scale, so a zero baseline error never makes a test impossible).
//
// Used by the tests, the main job's equivalence table, the CLI's `compare`
// and the Python module: one definition of "fast equals reference".
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace idattn {

struct Comparison {
    double rel_rms = 0;          // err(candidate)
    bool has_baseline = false;   // rule with a naive32 baseline, or a fixed tolerance
    double baseline_rel_rms = 0; // err(naive32)
    double threshold = 0;        // 2 * baseline + floor
    double fraction_used = 0;    // rel_rms / threshold
    double max_abs = 0;          // largest |candidate - ref|
    std::size_t worst_index = 0; // flat index of max_abs
    std::vector<std::size_t> worst_multi_index;
    double worst_candidate = 0, worst_reference = 0;
    std::size_t non_finite = 0;  // NaN/Inf in the candidate (a poisoned, unwritten output)
    bool pass = false;
    // One line: "rel_rms 3.1e-07 <= thr 1.2e-06 (26% used); max |err| 2.3e-06 at (0, 3, 17, 5): ..."
    std::string report() const;
};

inline constexpr double kDefaultFloorUlps = 4.0;

// candidate and baseline (optional: nullptr) have n elements laid out like ref.
Comparison compare_to_reference(const double* ref, const double* candidate, const double* baseline,
                                const std::vector<std::size_t>& shape,
                                double floor_ulps = kDefaultFloorUlps);

// For a claim with a fixed relative tolerance (float64 identities, 1e-12):
// threshold = tol, no baseline.
Comparison compare_with_tolerance(const double* ref, const double* candidate,
                                  const std::vector<std::size_t>& shape, double tol);

// The front ends' checks of a comparison, one wording for the CLI and Python
// ("tol" is --tol or tol=): `text` parsed whole as a finite number >= 0
// ("1e-3abc" is refused); a tolerance value checked likewise; the candidate
// and baseline shapes equal to the reference's and the reference finite (a
// NaN reference cannot judge anything). Each throws idattn::Error.
double parse_tolerance(const std::string& text);
void check_tolerance(double tol);
void check_comparison(const std::vector<std::size_t>& reference_shape, const double* reference,
                      const std::vector<std::size_t>& candidate_shape, const std::vector<std::size_t>* baseline_shape);

}  // namespace idattn
