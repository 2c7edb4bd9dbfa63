#pragma once
// Loading a configuration: from a file, a string (tests), or the command line's
// zero-config mode. Nothing here throws for a bad config; every problem found is
// returned, so one run of --check shows them all.

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "config/config_error.hpp"
#include "config/env.hpp"

namespace phlow::config {

enum class Format { yaml, json };

// By extension: .yaml/.yml or .json (case-insensitive); nullopt otherwise.
std::optional<Format> format_for_path(std::string_view path);

// Either a config (and no errors) or errors (and no config): a bad config never
// yields a half-configured gateway.
struct LoadResult {
  std::shared_ptr<const Config> config;
  std::vector<ConfigError> errors;

  bool ok() const { return config != nullptr; }
};

// `env` resolves ${VAR} in string values and supplies REDIS_URL when the file
// gives no redis.url.
LoadResult load_config_file(const std::string& path, const Env& env = process_env());
// `name` is what errors call the file.
LoadResult load_config_string(std::string_view text, Format format, const std::string& name,
                              const Env& env = process_env());

// `phlow-gateway --upstream URL [--listen ADDR:PORT]`: the default limits and one
// route "/" to that upstream (named "default") applying `auth`; Redis from REDIS_URL.
// Errors name "--upstream" or "--listen" as their file.
LoadResult zero_config(std::string upstream_url, std::string listen = "0.0.0.0:8080",
                       const Env& env = process_env());

}  // namespace phlow::config
