// Chapter 4 bindings: the SSM parameters (eq:P11, eq:4.zoh, eq:4.6), the basis (eq:4.psi),
// the states in four forms (eq:P11, eq:4.3, eq:4.4, eq:4.5), the HiPPO-LegS states (eq:4.1,
// eq:4.2) and causal interdomain attention over an SSM basis (eq:4.readout), through the
// api layer. Complex arrays come back as real arrays with a trailing axis of 2; python/idattn.py
// turns them into complex numpy arrays.
#include <pybind11/stl.h>

#include "api/04-ssm-basis-recurrence/ssm_api.hpp"
#include "api/common/names.hpp"
#include "python/py_common.hpp"

namespace idattn::py_bind {

namespace {
api::SsmSpec spec(const std::string& basis, const std::string& init, std::size_t M, double delta, std::size_t L,
                  double alpha) {
    api::SsmSpec s;
    s.basis = api::parse_ssm_basis(basis);
    s.init = api::parse_s4d_init(init);
    s.M = M;
    s.delta = delta;
    s.L = L;
    s.alpha = alpha;
    return s;
}

#define IDATTN_SSM_ARGS                                                                                  \
    py::arg("basis") = "s4d", py::arg("init") = "inv", py::arg("M") = 64, py::arg("delta") = 0.01,       \
        py::arg("L") = 64, py::arg("alpha") = 0.0
}  // namespace

void bind_04_ssm_basis_recurrence(py::module_& m) {
    m.def(
        "ssm_parameters",
        [](const std::string& basis, const std::string& init, std::size_t M, double delta, std::size_t L,
           double alpha) {
            const auto p = api::ssm_parameters_tensors(spec(basis, init, M, delta, L, alpha));
            py::dict d;
            d["lambda"] = to_numpy(p.lambda);
            d["bbar"] = to_numpy(p.bbar);
            return d;
        },
        IDATTN_SSM_ARGS,
        "Lambda and Bbar (M, 2) (real, imaginary) of an S4D basis (eq:P11, eq:4.zoh; init 'inv' or 'lin', M, delta) "
        "or the damped Fourier basis (eq:4.6; L, alpha).");
    m.def(
        "ssm_impulse_response",
        [](std::size_t N, const std::string& basis, const std::string& init, std::size_t M, double delta,
           std::size_t L, double alpha) {
            return run_to_dict(api::ssm_impulse_response(spec(basis, init, M, delta, L, alpha), N));
        },
        py::arg("N"), IDATTN_SSM_ARGS, "The basis psi (N, M, 2): psi[tau][m] = Lambda_m^tau Bbar_m (eq:4.psi).");
    m.def(
        "ssm_states",
        [](const py::array& z, const std::string& basis, const std::string& init, std::size_t M, double delta,
           std::size_t L, double alpha, const std::string& form, std::size_t chunk, const std::string& impl) {
            return run_to_dict(api::ssm_states(from_numpy("z", z), spec(basis, init, M, delta, L, alpha),
                                               api::parse_ssm_form(form), chunk, api::parse_impl(impl)));
        },
        py::arg("z"), IDATTN_SSM_ARGS, py::arg("form") = "recurrence", py::arg("chunk") = 64, py::arg("impl") = "ref",
        "The states (N, M, C, 2) after every token of z (N, C), form 'recurrence' (eq:P11), 'explicit' (eq:4.3), "
        "'fft' (eq:4.4) or 'chunked' (eq:4.5). Returns {'out', 'backend', 'notes'}.");
    m.def(
        "legs_states",
        [](const py::array& z, std::size_t M, const std::string& method, std::size_t substeps) {
            return run_to_dict(api::legs_states(from_numpy("z", z), M, api::parse_legs_method(method), substeps));
        },
        py::arg("z"), py::arg("M"), py::arg("method") = "exact", py::arg("substeps") = 1,
        "The HiPPO-LegS states c(t) (N, M, C), t = 1..N: 'exact' (eq:4.1), 'euler' or 'bilinear' with `substeps` "
        "sub-steps per token in tau = log t (eq:4.2). Returns {'out', 'backend', 'notes'}.");
    m.def(
        "ssm_attention_features",
        [](const py::array& fq, const py::array& fk, const py::array& v, const std::string& basis,
           const std::string& init, std::size_t M, double delta, std::size_t L, double alpha, const std::string& form,
           std::size_t chunk, const std::string& impl) {
            return run_to_dict(api::ssm_attention_features(
                from_numpy("query features", fq), from_numpy("key features", fk), from_numpy("v", v),
                spec(basis, init, M, delta, L, alpha), api::parse_ssm_form(form), chunk, api::parse_impl(impl)));
        },
        py::arg("fq"), py::arg("fk"), py::arg("v"), IDATTN_SSM_ARGS, py::arg("form") = "recurrence",
        py::arg("chunk") = 64, py::arg("impl") = "ref",
        "Causal interdomain attention over an SSM basis (eq:4.readout) on given features. "
        "Returns {'out', 'backend', 'notes'}.");
    m.def(
        "ssm_attention",
        [](const py::array& q, const py::array& k, const py::array& v, const std::string& map, const py::object& w,
           const std::string& basis, const std::string& init, std::size_t M, double delta, std::size_t L,
           double alpha, const std::string& form, std::size_t chunk, const std::string& impl) {
            return run_to_dict(api::ssm_attention(from_numpy("q", q), from_numpy("k", k), from_numpy("v", v),
                                                  api::parse_feature_map(map), optional_w(w),
                                                  spec(basis, init, M, delta, L, alpha), api::parse_ssm_form(form),
                                                  chunk, api::parse_impl(impl)));
        },
        py::arg("q"), py::arg("k"), py::arg("v"), py::arg("map"), py::arg("w") = py::none(), IDATTN_SSM_ARGS,
        py::arg("form") = "recurrence", py::arg("chunk") = 64, py::arg("impl") = "ref",
        "Causal interdomain attention over an SSM basis (eq:4.readout) from q, k, v with the chapter-2 feature map "
        "`map` and draw `w`. Returns {'out', 'backend', 'notes'}.");
}

}  // namespace idattn::py_bind
