#pragma once
// Collects validation errors, each with its file, line and key path.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config_error.hpp"
#include "document.hpp"
#include "path.hpp"

namespace phlow::config {

using Json = nlohmann::ordered_json;

// A value in the tree and where it is.
struct Node {
  const Json* value;
  Path path;
};

class Diagnostics {
 public:
  Diagnostics(const Document& doc, std::vector<ConfigError>& errors)
      : doc_(doc), errors_(errors) {}

  void error(const Path& path, std::string message);
  // "expected WHAT, got DESCRIPTION-OF-VALUE".
  void expected(const Node& node, const std::string& what);
  std::size_t count() const { return errors_.size(); }

 private:
  const Document& doc_;
  std::vector<ConfigError>& errors_;
};

// `got a string "x"`, `got a list`, ... for error messages.
std::string describe(const Json& value);

}  // namespace phlow::config
