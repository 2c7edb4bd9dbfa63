#pragma once
// Where a value sits in the config tree, in the two spellings the loader needs:
// a JSON pointer ("/routes/1/limits/0") to look up its source line, and the
// display form users read in errors ("routes[1].limits[0]").

#include <cstddef>
#include <string>
#include <string_view>

namespace phlow::config {

class Path {
 public:
  Path key(std::string_view name) const;
  Path index(std::size_t i) const;

  const std::string& pointer() const { return pointer_; }
  const std::string& display() const { return display_; }

 private:
  std::string pointer_;
  std::string display_;
};

}  // namespace phlow::config
