#pragma once
// Picks the route of a request: `routes` in order, the first match wins.

#include "config/config.hpp"
#include "gateway/request_view.hpp"

namespace phlow::gateway {

// Returns the first route whose path_prefix, methods (if any) and host (if any) match,
// or nullptr. A path_prefix matches at segment boundaries or as a plain prefix when
// it ends in '/': "/roles" matches "/roles", "/roles/x" and "/roles?q", not "/rolesx".
const config::Route* match_route(const config::Config& config, const RequestView& request);

}  // namespace phlow::gateway
