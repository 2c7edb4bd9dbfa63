#include "path.hpp"

namespace phlow::config {

Path Path::key(std::string_view name) const {
  Path out = *this;
  out.pointer_ += '/';
  for (char c : name) {  // RFC 6901 escaping
    if (c == '~') {
      out.pointer_ += "~0";
    } else if (c == '/') {
      out.pointer_ += "~1";
    } else {
      out.pointer_ += c;
    }
  }
  out.display_ += display_.empty() ? std::string(name) : "." + std::string(name);
  return out;
}

Path Path::index(std::size_t i) const {
  Path out = *this;
  out.pointer_ += "/" + std::to_string(i);
  out.display_ += "[" + std::to_string(i) + "]";
  return out;
}

}  // namespace phlow::config
