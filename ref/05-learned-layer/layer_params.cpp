// Chapter 5: the layer's parameters - the names each variant uses, the checks
// that name a missing, extra, misshapen or non-finite array, the SSM
// parameters of one head (eq:5.ssm) and the paper's initialisation (eq:5.init).
// chapters/05-learned-layer.md ("The parameters") is the contract.
#include <cmath>
#include <numbers>
#include <random>

#include "core/error.hpp"
#include "core/validate.hpp"
#include "ref/04-ssm-basis-recurrence/ssm.hpp"
#include "ref/05-learned-layer/layer.hpp"

namespace idattn::ref {

namespace {

using cd = std::complex<double>;

struct VariantInfo {
    LayerVariant v;
    const char* name;
    bool rope;
};
constexpr VariantInfo kVariants[] = {
    {LayerVariant::Full, "full", true},       {LayerVariant::NoRope, "norope", false},
    {LayerVariant::DualKv, "dualkv", true},   {LayerVariant::Single, "single", true},
    {LayerVariant::S4d, "s4d", false},        {LayerVariant::Softmax, "softmax", true},
};

bool has_query(LayerVariant v) { return v != LayerVariant::DualKv && v != LayerVariant::S4d; }
bool uses_ab(LayerVariant v) { return v == LayerVariant::Single || v == LayerVariant::S4d; }

// The expected shape of every array of the variant, from D, H, R, d, M.
std::vector<std::pair<std::string, std::vector<std::size_t>>> expected_shapes(LayerVariant v, const LayerDims& k) {
    const std::size_t D = k.D, H = k.H, R = k.R, d = k.d, M = k.M;
    std::vector<std::pair<std::string, std::vector<std::size_t>>> s;
    if (v == LayerVariant::Softmax) {
        s = {{"W_q", {D, H * R}}, {"W_k", {D, H * R}}, {"W_v", {D, H * d}}};
    } else {
        if (has_query(v)) s.push_back({"W_q", {D, H * R}});
        const std::string kn = uses_ab(v) ? "a" : "k", vn = uses_ab(v) ? "b" : "v";
        s.push_back({"W_" + kn, {D, H * R}});
        s.push_back({"W_" + vn, {D, H * d}});
        if (has_query(v)) s.push_back({"conv_q", {H * R, 4}});
        if (uses_ab(v)) {
            s.push_back({"conv_a", {H * R, 4}});
            s.push_back({"conv_b", {H * d, 4}});
        } else {
            s.push_back({"conv_k", {H * R, 4}});
        }
        s.push_back({"g_" + kn, {H, R}});
        s.push_back({"b_" + kn, {H, R}});
        s.push_back({"g_" + vn, {H, d}});
        s.push_back({"b_" + vn, {H, d}});
        s.push_back({"log_dt", {H}});
        s.push_back({"log_A_real", {H, M}});
        s.push_back({"A_imag", {H, M}});
        s.push_back({"B", {H, M, 2}});
        s.push_back({"C", {H, M, M, 2}});
        if (!has_query(v)) s.push_back({"c_read", {H, R}});
    }
    if (k.gate) s.push_back({"W_g", {D, H * d}});
    s.push_back({"W_o", {H * d, D}});
    return s;
}

std::vector<std::size_t> shape_of(const xt::xarray<double>& a) { return {a.shape().begin(), a.shape().end()}; }

const xt::xarray<double>& need(const std::string& what, LayerVariant v, const LayerParams& p, const std::string& n) {
    auto it = p.arrays.find(n);
    if (it == p.arrays.end())
        throw Error(what + ": the parameter array '" + n + "' is missing; the " + layer_variant_name(v) +
                    " variant needs it");
    return it->second;
}

// An axis of a shape that must divide by H, e.g. W_k's H*R.
std::size_t per_head(const std::string& what, const std::string& n, const std::vector<std::size_t>& shape,
                     std::size_t axis, std::size_t H, const char* sym) {
    if (shape.size() != 2)
        throw Error(what + ": '" + n + "' has shape " + shape_str(shape) + "; expected a matrix");
    const std::size_t w = shape[axis];
    if (w == 0 || w % H != 0)
        throw Error(what + ": '" + n + "' has shape " + shape_str(shape) + ", whose axis " + std::to_string(axis) +
                    " (H*" + sym + ") is not a positive multiple of H = " + std::to_string(H));
    return w / H;
}

}  // namespace

std::string layer_variant_name(LayerVariant v) {
    for (const auto& i : kVariants)
        if (v == i.v) return i.name;
    throw Error("layer_variant_name: unknown variant");
}

std::vector<std::string> layer_variant_names() {
    std::vector<std::string> n;
    for (const auto& i : kVariants) n.push_back(i.name);
    return n;
}

bool layer_default_rope(LayerVariant v) {
    for (const auto& i : kVariants)
        if (v == i.v) return i.rope;
    return false;
}

std::string layer_form_name(LayerForm f) {
    return f == LayerForm::Recurrence ? "recurrence" : f == LayerForm::Folded ? "folded" : "chunked";
}

std::string layer_backward_name(LayerBackward b) {
    return b == LayerBackward::Stored ? "stored" : "lambda-division";
}

std::string rope_order_name(RopeOrder o) { return o == RopeOrder::BeforeFeatureMap ? "before-xi" : "after-xi"; }

std::vector<std::string> layer_param_names(LayerVariant v, bool gate) {
    std::vector<std::string> names;
    for (const auto& [n, shape] : expected_shapes(v, LayerDims{1, 1, 1, 1, 1, gate})) names.push_back(n);
    return names;
}

LayerDims check_layer_params(const std::string& what, LayerVariant v, const LayerParams& p, bool rope) {
    LayerDims k;
    k.H = p.heads;
    if (k.H == 0) throw Error(what + ": 'heads' must be >= 1, got 0");
    k.gate = p.arrays.count("W_g") > 0;
    const auto wo = shape_of(need(what, v, p, "W_o"));
    k.d = per_head(what, "W_o", wo, 0, k.H, "d");
    k.D = wo[1];
    if (k.D == 0) throw Error(what + ": 'W_o' has shape " + shape_str(wo) + "; the model width D must be >= 1");
    const std::string key = has_query(v) ? "W_q" : uses_ab(v) ? "W_a" : "W_k";
    k.R = per_head(what, key, shape_of(need(what, v, p, key)), 1, k.H, "R");
    if (v != LayerVariant::Softmax) {
        const auto la = shape_of(need(what, v, p, "log_A_real"));
        if (la.size() != 2 || la[1] == 0)
            throw Error(what + ": 'log_A_real' has shape " + shape_str(la) + "; expected (H, M) = (" +
                        std::to_string(k.H) + ", M) with M >= 1");
        k.M = la[1];
    }
    const auto expected = expected_shapes(v, k);
    for (const auto& [n, shape] : expected) {
        const auto& a = need(what, v, p, n);
        if (shape_of(a) != shape)
            throw Error(what + ": '" + n + "' has shape " + shape_str(shape_of(a)) + " but expected " +
                        shape_str(shape) + " (D = " + std::to_string(k.D) + ", H = " + std::to_string(k.H) +
                        ", R = " + std::to_string(k.R) + ", d = " + std::to_string(k.d) +
                        (v == LayerVariant::Softmax ? std::string() : ", M = " + std::to_string(k.M)) + ")");
        require_finite(what, "'" + n + "'", a.data(), shape);
    }
    for (const auto& [n, a] : p.arrays) {
        bool known = false;
        for (const auto& e : expected) known = known || e.first == n;
        if (!known)
            throw Error(what + ": the parameter array '" + n + "' is not used by the " + layer_variant_name(v) +
                        " variant; expected exactly: " + [&] {
                            std::string l;
                            for (const auto& e : expected) l += (l.empty() ? "" : ", ") + e.first;
                            return l;
                        }());
    }
    if (rope && k.R % 2 != 0)
        throw Error(what + ": RoPE is on but R = " + std::to_string(k.R) +
                    " is odd (RoPE rotates pairs of channels); use an even R or --rope off");
    if (v != LayerVariant::Softmax) {
        for (std::size_t h = 0; h < k.H; ++h) {
            const CoreParams cp = core_params(p, h);
            for (std::size_t m = 0; m < k.M; ++m) {
                const double dt = p.arrays.at("log_dt")(h), la = p.arrays.at("log_A_real")(h, m);
                const std::string at = "head " + std::to_string(h) + ", mode " + std::to_string(m) +
                                       ": log_dt = " + num_str(dt) + ", log_A_real = " + num_str(la);
                const double delta = std::exp(dt), re = std::exp(la);
                if (!std::isfinite(delta * re) || !std::isfinite(delta * p.arrays.at("A_imag")(h, m)) ||
                    !std::isfinite(std::abs(cp.lambda(m))))
                    throw Error(what + ": Delta A overflows at " + at + " (Delta = exp(log_dt), Re A = -exp(log_A_real))");
                if (!(std::abs(cp.lambda(m)) < 1.0))
                    throw Error(what + ": |Lambda| = " + num_str(std::abs(cp.lambda(m))) + " >= 1 at " + at +
                                ": Delta exp(log_A_real) underflows to 0, so the state would never decay");
            }
        }
    }
    return k;
}

CoreParams core_params(const LayerParams& p, std::size_t h) {
    const auto& la = p.arrays.at("log_A_real");
    const auto& ai = p.arrays.at("A_imag");
    const auto& b = p.arrays.at("B");
    const auto& c = p.arrays.at("C");
    const std::size_t M = la.shape(1);
    CoreParams cp{CVec(xt::zeros<cd>({M})), CVec(xt::zeros<cd>({M})), CMat(xt::zeros<cd>({M, M}))};
    const double delta = std::exp(p.arrays.at("log_dt")(h));  // Delta = exp(log_dt)     eq:5.ssm
    for (std::size_t m = 0; m < M; ++m) {
        const cd a(-std::exp(la(h, m)), ai(h, m));  // A = -exp(log_A_real) + i A_imag   eq:5.ssm
        cp.lambda(m) = std::exp(delta * a);         // Lambda = exp(Delta A)            eq:5.ssm
        cp.b(m) = cd(b(h, m, 0), b(h, m, 1));
        for (std::size_t n = 0; n < M; ++n) cp.c(m, n) = cd(c(h, m, n, 0), c(h, m, n, 1));
    }
    return cp;
}

LayerParams layer_init(LayerVariant v, const LayerInitSpec& spec) {
    const std::string what = "layer-init";
    const std::pair<const char*, std::size_t> sizes[] = {{"D", spec.D}, {"H", spec.H}, {"R", spec.R}, {"d", spec.d}};
    for (const auto& [n, val] : sizes)
        if (val == 0) throw Error(what + ": " + n + " must be >= 1, got 0");
    if (v != LayerVariant::Softmax && spec.M == 0) throw Error(what + ": M must be >= 1, got 0");
    if (spec.rope && spec.R % 2 != 0)
        throw Error(what + ": RoPE is on but R = " + std::to_string(spec.R) + " is odd; use an even R or --rope off");
    LayerDims k{spec.D, spec.H, spec.R, spec.d, v == LayerVariant::Softmax ? 0 : spec.M, spec.gate};
    const auto shapes = expected_shapes(v, k);
    std::vector<Alloc> allocs;
    for (const auto& [n, shape] : shapes) allocs.push_back({"'" + n + "'", shape, 8});
    require_memory(what, "D = " + std::to_string(spec.D) + ", H = " + std::to_string(spec.H) + ", R = " +
                             std::to_string(spec.R) + ", d = " + std::to_string(spec.d) + ", M = " +
                             std::to_string(spec.M),
                   allocs);

    std::mt19937_64 eng(spec.seed);
    LayerParams p;
    p.heads = spec.H;
    const std::size_t H = spec.H, M = k.M;
    xt::xtensor<double, 1> log_dt = xt::zeros<double>({H});
    // log Delta ~ U(log 1e-3, log 1e-1), one per head     eq:5.init
    std::uniform_real_distribution<double> u_dt(std::log(1e-3), std::log(1e-1));
    for (std::size_t h = 0; h < H; ++h) log_dt(h) = u_dt(eng);
    for (const auto& [n, shape] : shapes) {
        xt::xarray<double> a = xt::zeros<double>(shape);
        if (n.rfind("W_", 0) == 0) {
            // W normal with std 1/sqrt(fan_in)     eq:5.init
            std::normal_distribution<double> nd(0.0, 1.0 / std::sqrt(double(shape[0])));
            for (auto& e : a) e = nd(eng);
        } else if (n.rfind("conv_", 0) == 0) {
            std::uniform_real_distribution<double> uc(-0.5, 0.5);  // conv uniform in [-1/2, 1/2]
            for (auto& e : a) e = uc(eng);
        } else if (n.rfind("g_", 0) == 0) {
            a.fill(1.0);  // g = 1 (b = 0)
        } else if (n == "c_read") {
            a.fill(1.0 / std::sqrt(double(spec.R)));  // c_read = 1/sqrt(R)
        } else if (n == "log_dt") {
            a = log_dt;
        } else if (n == "log_A_real") {
            a.fill(std::log(0.5));  // Re A = -1/2
        } else if (n == "A_imag") {
            // S4D-Inv with S4D's state size 2M, chapter 4's s4d_a: every frequency positive     eq:5.init
            const CVec inv = s4d_a(S4dInit::Inv, M);
            for (std::size_t h = 0; h < H; ++h)
                for (std::size_t m = 0; m < M; ++m) a(h, m) = inv(m).imag();
        } else if (n == "B") {
            // B = (Lambda - 1)/A: zero-order hold of 1 at the initial Delta (chapter 4's eq:4.zoh)     eq:5.init
            for (std::size_t h = 0; h < H; ++h) {
                const CVec ones = xt::ones<cd>({M});
                const DiagonalSsm<double> zoh = s4d_zoh(s4d_a(S4dInit::Inv, M), ones, std::exp(log_dt(h)));
                for (std::size_t m = 0; m < M; ++m) {
                    a(h, m, 0) = zoh.bbar(m).real();
                    a(h, m, 1) = zoh.bbar(m).imag();
                }
            }
        } else if (n == "C") {
            for (std::size_t h = 0; h < H; ++h)
                for (std::size_t m = 0; m < M; ++m) a(h, m, m, 0) = 1.0;  // C = I
        }
        p.arrays.emplace(n, std::move(a));
    }
    return p;
}

}  // namespace idattn::ref
