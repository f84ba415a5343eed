// Options shared by the subcommands that take a chapter-2 feature map
// (`features`, `linear`, `interdomain`, `ssm-attention`): the random draw W and
// non-negative integer options.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "api/02-kernel-feature-map/feature_map_api.hpp"
#include "cli/cli.hpp"

namespace idattn::cli {

// `text` as a non-negative integer; otherwise an idattn::Error naming the
// command and the option ("linear: --chunk must be a non-negative integer, got '-3'").
std::uint64_t parse_count(const std::string& command, const std::string& option, const std::string& text);

// The draw W of a random map: read from --w FILE.npy when given, otherwise
// drawn from --R (number of frequencies) and --seed, and written to --save-w
// when asked (together with the run's result: all or none), so that another
// run (or your own kernel) can reuse it. For the
// deterministic taylor map an empty (0, 0) tensor; --w and --R are errors.
HostTensor feature_weights(Args& a, ref::FeatureMap map, std::size_t d);

}  // namespace idattn::cli
