#include "diagnostics.hpp"

namespace phlow::config {

void Diagnostics::error(const Path& path, std::string message) {
  errors_.push_back({doc_.file, doc_.line_of(path.pointer()), path.display(), std::move(message)});
}

void Diagnostics::expected(const Node& node, const std::string& what) {
  error(node.path, "expected " + what + ", got " + describe(*node.value));
}

std::string describe(const Json& value) {
  switch (value.type()) {
    case Json::value_t::string: return "\"" + value.get<std::string>() + "\"";
    case Json::value_t::boolean: return value.get<bool>() ? "true" : "false";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float: return "the number " + value.dump();
    case Json::value_t::array: return "a list";
    case Json::value_t::object: return "a mapping";
    case Json::value_t::null: return "nothing";
    default: return "an unsupported value";
  }
}

}  // namespace phlow::config
