#include "api/common/compare.hpp"

#include <cfloat>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>

#include "core/error.hpp"
#include "core/validate.hpp"

namespace idattn {

namespace {

double rel_rms(const double* ref, const double* x, std::size_t n, std::size_t* non_finite) {
    double num = 0, den = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (!std::isfinite(x[i])) {
            if (non_finite) ++*non_finite;
            continue;
        }
        num += (x[i] - ref[i]) * (x[i] - ref[i]);
        den += ref[i] * ref[i];
    }
    if (den == 0) return std::sqrt(num);  // all-zero reference: absolute RMS
    return std::sqrt(num / den);
}

Comparison fill(const double* ref, const double* cand, const std::vector<std::size_t>& shape) {
    std::size_t n = 1;
    for (auto s : shape) n *= s;
    Comparison c;
    c.rel_rms = rel_rms(ref, cand, n, &c.non_finite);
    for (std::size_t i = 0; i < n; ++i) {
        const double e = std::isfinite(cand[i]) ? std::fabs(cand[i] - ref[i]) : INFINITY;
        if (e > c.max_abs || (i == 0)) {
            c.max_abs = e;
            c.worst_index = i;
        }
    }
    if (n) {
        c.worst_candidate = cand[c.worst_index];
        c.worst_reference = ref[c.worst_index];
    }
    c.worst_multi_index.resize(shape.size());
    std::size_t flat = c.worst_index;
    for (std::size_t a = shape.size(); a-- > 0;) {
        c.worst_multi_index[a] = flat % shape[a];
        flat /= shape[a];
    }
    return c;
}

void finish(Comparison& c) {
    c.fraction_used = c.threshold > 0 ? c.rel_rms / c.threshold : INFINITY;
    c.pass = c.non_finite == 0 && c.rel_rms <= c.threshold;
}

}  // namespace

Comparison compare_to_reference(const double* ref, const double* candidate, const double* baseline,
                                const std::vector<std::size_t>& shape, double floor_ulps) {
    if (floor_ulps < 0) throw Error("compare_to_reference: floor_ulps must be >= 0, got " + std::to_string(floor_ulps));
    Comparison c = fill(ref, candidate, shape);
    if (baseline) {
        c.has_baseline = true;
        std::size_t n = 1;
        for (auto s : shape) n *= s;
        std::size_t bad = 0;
        c.baseline_rel_rms = rel_rms(ref, baseline, n, &bad);
        if (bad) throw Error("compare_to_reference: the float32 baseline has " + std::to_string(bad) +
                             " non-finite values; the rule err <= 2 err(naive32) + floor needs a finite baseline");
    }
    c.threshold = 2.0 * c.baseline_rel_rms + floor_ulps * FLT_EPSILON;
    finish(c);
    return c;
}

Comparison compare_with_tolerance(const double* ref, const double* candidate,
                                  const std::vector<std::size_t>& shape, double tol) {
    Comparison c = fill(ref, candidate, shape);
    c.threshold = tol;
    finish(c);
    return c;
}

std::string Comparison::report() const {
    std::ostringstream s;
    char buf[512];
    std::snprintf(buf, sizeof buf, "%s rel_rms %.3e %s thr %.3e (%.0f%% used", pass ? "PASS" : "FAIL", rel_rms,
                  rel_rms <= threshold ? "<=" : ">", threshold, 100.0 * fraction_used);
    s << buf;
    if (has_baseline) {
        std::snprintf(buf, sizeof buf, "; naive32 %.3e", baseline_rel_rms);
        s << buf;
    }
    std::snprintf(buf, sizeof buf, "); max |err| %.3e at (", max_abs);
    s << buf;
    for (std::size_t a = 0; a < worst_multi_index.size(); ++a) s << (a ? ", " : "") << worst_multi_index[a];
    std::snprintf(buf, sizeof buf, "): got %.9g, reference %.9g", worst_candidate, worst_reference);
    s << buf;
    if (non_finite) s << "; " << non_finite << " NON-FINITE values (unwritten NaN-poisoned output?)";
    return s.str();
}

void check_tolerance(double tol) {
    if (!(tol >= 0) || !std::isfinite(tol)) {
        std::ostringstream s;
        s << "compare: tol must be a finite number >= 0, got " << tol;
        throw Error(s.str());
    }
}

double parse_tolerance(const std::string& text) {
    std::size_t used = 0;
    double tol = 0;
    try {
        tol = std::stod(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (text.empty() || used != text.size())
        throw Error("compare: tol must be a finite number >= 0, got '" + text + "'");
    check_tolerance(tol);
    return tol;
}

void check_comparison(const std::vector<std::size_t>& reference_shape, const double* reference,
                      const std::vector<std::size_t>& candidate_shape, const std::vector<std::size_t>* baseline_shape) {
    if (candidate_shape != reference_shape)
        throw Error("compare: the candidate has shape " + shape_str(candidate_shape) + " but the reference has " +
                    shape_str(reference_shape));
    if (baseline_shape && *baseline_shape != reference_shape)
        throw Error("compare: the baseline has shape " + shape_str(*baseline_shape) + " but the reference has " +
                    shape_str(reference_shape));
    std::size_t n = 1;
    for (auto s : reference_shape) n *= s;
    for (std::size_t i = 0; i < n; ++i)
        if (!std::isfinite(reference[i])) {
            std::ostringstream s;
            s << "compare: the reference is not finite (element " << i << " is " << reference[i]
              << "); a reference must be finite to judge a candidate";
            throw Error(s.str());
        }
}

}  // namespace idattn
