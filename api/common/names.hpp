// The vocabulary of the front ends: the words a user types on the command line
// (`--map positive`) or passes to Python (`map="positive"`), turned into the
// enums of the references. They live here, not in ref/: the float64 layer
// takes enums and never reads user text. The way back (enum -> word) stays in
// ref (`ref::feature_map_name`, ...), because ref's own error messages name
// the option they refuse.
//
// Every parser throws idattn::Error naming the option and listing the choices.
// The parsers of the api's own enums sit beside those enums: parse_impl
// (api/common/dispatch.hpp), parse_linear_form (api/02-kernel-feature-map),
// parse_ssm_basis (api/04-ssm-basis-recurrence).
#pragma once

#include <string>

#include "ref/02-kernel-feature-map/feature_map.hpp"
#include "ref/03-interdomain-projection/bases.hpp"
#include "ref/04-ssm-basis-recurrence/ssm.hpp"
#include "ref/05-learned-layer/layer.hpp"

namespace idattn::api {

// Chapter 2: "rff", "positive", "orthogonal", "taylor".
ref::FeatureMap parse_feature_map(const std::string& name);

// Chapter 3: "legs", "gram", "dct", "fourier".
ref::Basis parse_basis(const std::string& name);

// Chapter 4.
ref::LegsMethod parse_legs_method(const std::string& name);  // "exact", "euler", "bilinear"
ref::S4dInit parse_s4d_init(const std::string& name);        // "inv", "lin"
ref::SsmForm parse_ssm_form(const std::string& name);        // "recurrence", "explicit", "fft", "chunked"

// Chapter 5.
ref::LayerVariant parse_layer_variant(const std::string& name);      // full|norope|dualkv|single|s4d|softmax
ref::LayerForm parse_layer_form(const std::string& name);            // recurrence|folded|chunked
ref::LayerBackward parse_layer_backward(const std::string& name);    // stored|lambda-division
ref::RopeOrder parse_rope_order(const std::string& name);            // before-xi|after-xi

// Chapter 6: how a decoder reads its state out: C X_t per token (explicit, the
// paper's O(M^2 (R + d))) or through G = C^H C (folded, O(M (R + d) + M^2)), eq:6.cost.
ref::LayerForm parse_readout(const std::string& name);  // explicit|folded

}  // namespace idattn::api
