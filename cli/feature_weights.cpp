#include "cli/feature_weights.hpp"

#include "api/common/npy.hpp"
#include "core/error.hpp"

namespace idattn::cli {

HostTensor feature_weights(Args& a, ref::FeatureMap map, std::size_t d) {
    const std::string w_path = a.optional("--w", "");
    const std::string r_text = a.optional("--R", "");
    const std::string seed_text = a.optional("--seed", "0");
    const std::string save = a.optional_output("--save-w");
    if (!ref::is_random(map)) {
        if (!w_path.empty() || !r_text.empty() || !save.empty())
            throw Error(a.command() + ": the taylor map is deterministic and has no random draw W: --w, --R and "
                                      "--save-w do not apply");
        if (a.given("--seed")) a.note("--seed does not apply to the deterministic taylor map; ignored");
        return HostTensor{{0, 0}, "float64", {}};
    }
    HostTensor w;
    if (!w_path.empty()) {
        if (!r_text.empty()) throw Error(a.command() + ": give either --w FILE.npy or --R (a fresh draw), not both");
        w = npy::read(w_path, "--w (" + w_path + ")");
    } else {
        if (r_text.empty())
            throw Error(a.command() + ": the " + ref::feature_map_name(map) +
                        " map needs a random draw: give --w FILE.npy or --R (number of random frequencies)");
        w = api::draw_feature_weights(map, parse_count(a.command(), "--R", r_text), d,
                                      parse_count(a.command(), "--seed", seed_text));
    }
    if (!save.empty()) a.also_write(save, w);  // written with the result, all or none
    return w;
}

}  // namespace idattn::cli
