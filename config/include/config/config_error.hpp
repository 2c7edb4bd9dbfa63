#pragma once
// One problem found while loading a config file.

#include <string>
#include <vector>

namespace phlow::config {

struct ConfigError {
  std::string file;     // as given to the loader, or a name such as "--upstream"
  int line = 0;         // 1-based; 0 when the format gives none
  std::string path;     // key path such as "routes[1].limits[0]"; empty for the file
  std::string message;  // what was expected

  // "FILE:LINE: PATH: MESSAGE", leaving out a zero line and an empty path.
  std::string to_string() const;
  bool operator==(const ConfigError&) const = default;
};

// One error per line, each ending in '\n'.
std::string format_errors(const std::vector<ConfigError>& errors);

}  // namespace phlow::config
