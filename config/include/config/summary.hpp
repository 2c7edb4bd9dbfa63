#pragma once
// Human- and machine-readable views of a loaded config. Neither ever shows a secret.

#include <string>

#include <nlohmann/json.hpp>

#include "config/config.hpp"

namespace phlow::config {

// The one-screen summary `--check` prints: listeners, Redis mode, upstreams, routes
// with their limits, and limits with algorithm, window and key.
std::string summarize(const Config& config);

// The whole config in the file's structure, with defaults filled in and durations and
// sizes spelled as a user would write them. The Redis password and the admin token
// are replaced by "***". Without secrets, it loads back to an equal Config.
// Ordered, because the order of limits and routes is meaning (plain nlohmann::json
// would sort the limit names); it converts to nlohmann::json where order is moot.
nlohmann::ordered_json to_redacted_json(const Config& config);

}  // namespace phlow::config
