#pragma once
// Shared by the config tests: load a snippet with a fake environment.

#include <catch2/catch.hpp>
#include <map>
#include <string>

#include "config/loader.hpp"

namespace phlow::config::test {

inline Env fake_env(std::map<std::string, std::string> vars = {}) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

// The smallest valid file: one upstream; limits and routes take their defaults.
inline const std::string kMinimalYaml =
    "upstreams:\n"
    "  agent: { url: \"http://127.0.0.1:8000\" }\n";

inline LoadResult load_yaml(const std::string& text, const Env& env = fake_env()) {
  return load_config_string(text, Format::yaml, "test.yaml", env);
}

// The config of a load that must succeed (its errors shown when it does not).
inline const Config& require_ok(const LoadResult& result) {
  INFO(format_errors(result.errors));
  REQUIRE(result.ok());
  REQUIRE(result.errors.empty());
  return *result.config;
}

inline LoadResult load_json(const std::string& text, const Env& env = fake_env()) {
  return load_config_string(text, Format::json, "test.json", env);
}

}  // namespace phlow::config::test
