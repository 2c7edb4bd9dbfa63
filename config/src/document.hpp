#pragma once
// The one intermediate form both file formats are read into: a JSON tree plus the
// source line of every key and element, so the validator never needs to know
// which format a value came from.

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config_error.hpp"

namespace phlow::config {

struct Document {
  std::string file;
  nlohmann::ordered_json tree;                // object order kept: limits are ordered
  std::unordered_map<std::string, int> lines;  // JSON pointer -> 1-based line
  std::vector<ConfigError> errors;            // syntax errors, duplicate keys

  // The line of `pointer`, else of its nearest ancestor that has one, else 0.
  int line_of(std::string pointer) const;
};

// Plain YAML scalars are typed by the YAML 1.2 core schema (so `off` and `yes`
// stay strings); quoted scalars are always strings.
Document read_yaml(std::string_view text, const std::string& file);
Document read_json(std::string_view text, const std::string& file);

}  // namespace phlow::config
