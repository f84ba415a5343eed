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

// The options of the draw, listed by every subcommand that takes a feature map.
inline const Option kWOption{"--w FILE.npy", "the random draw W, (R, d); instead of --R/--seed"};
inline const Option kROption{"--R N", "draw W with N random frequencies (rff gives 2N features) from --seed"};
inline const Option kSeedOption{"--seed S", "seed of the draw (default 0)"};
inline const Option kSaveWOption{"--save-w FILE.npy", "write the draw W used, to reuse it with --w (written with the result)"};
inline const Option kFeatureMapOption{"--map rff|positive|orthogonal|taylor", "feature map of chapter 2 (default positive)"};


// The draw W of a random map: read from --w FILE.npy when given, otherwise
// drawn from --R (number of frequencies) and --seed, and written to --save-w
// when asked (together with the run's result: all or none), so that another
// run (or your own kernel) can reuse it. For the
// deterministic taylor map an empty (0, 0) tensor; --w and --R are errors.
HostTensor feature_weights(Args& a, ref::FeatureMap map, std::size_t d);

}  // namespace idattn::cli
