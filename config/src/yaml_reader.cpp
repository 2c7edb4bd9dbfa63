// YAML -> Document, with yaml-cpp. yaml-cpp hands out every scalar as text, so the
// typing of plain scalars (int, float, bool, null) is done here.

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "document.hpp"
#include "path.hpp"

namespace phlow::config {
namespace {

using Json = nlohmann::ordered_json;

// The YAML 1.2 core schema float: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool is_float(std::string_view text) {
  std::size_t i = 0;
  auto digits = [&] {
    const std::size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    return i - start;
  };
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) ++i;
  std::size_t mantissa = digits();
  if (i < text.size() && text[i] == '.') {
    ++i;
    mantissa += digits();
  }
  if (mantissa == 0) return false;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < text.size() && (text[i] == '-' || text[i] == '+')) ++i;
    if (digits() == 0) return false;
  }
  return i == text.size();
}

// RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF. JSON input is
// checked by nlohmann's parser; YAML input is not checked by yaml-cpp.
bool is_valid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t extra = 0;
    std::uint32_t code = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      extra = 1, code = c & 0x1FU;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2, code = c & 0x0FU;
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3, code = c & 0x07U;
    } else {
      return false;
    }
    if (text.size() - i <= extra) return false;
    for (std::size_t k = 1; k <= extra; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0U) != 0x80U) return false;
      code = (code << 6) | (next & 0x3FU);
    }
    if ((extra == 2 && code < 0x800) || (extra == 3 && code < 0x10000) || code > 0x10FFFF ||
        (code >= 0xD800 && code <= 0xDFFF)) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

Json typed_scalar(const YAML::Node& node) {
  const std::string& text = node.Scalar();
  if (node.Tag() != "?") return text;  // quoted ("!") or explicitly tagged
  if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") {
    return nullptr;
  }
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  std::int64_t integer = 0;
  const char* begin = text.data() + (text[0] == '+' ? 1 : 0);
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, integer);
  if (ec == std::errc{} && ptr == end) return integer;
  if (is_float(text)) {
    const double value = std::strtod(text.c_str(), nullptr);  // strtod: no throw on 1e999
    if (std::isfinite(value)) return value;
  }
  return text;
}

class YamlConverter {
 public:
  explicit YamlConverter(Document& doc) : doc_(doc) {}

  Json convert(const YAML::Node& node, const Path& path) {
    switch (node.Type()) {
      case YAML::NodeType::Scalar:
        // Every string of a config may end up in JSON (admin API, status, logs), and
        // nlohmann's dump() throws on invalid UTF-8.
        if (!is_valid_utf8(node.Scalar())) {
          error(path, node.Mark(), "not valid UTF-8");
          return nullptr;
        }
        return typed_scalar(node);
      case YAML::NodeType::Sequence: return sequence(node, path);
      case YAML::NodeType::Map: return map(node, path);
      default: return nullptr;
    }
  }

 private:
  void mark(const Path& path, const YAML::Mark& mark) {
    if (!mark.is_null()) doc_.lines.emplace(path.pointer(), mark.line + 1);
  }

  Json sequence(const YAML::Node& node, const Path& path) {
    Json out = Json::array();
    std::size_t i = 0;
    for (const auto& element : node) {
      const Path child = path.index(i++);
      mark(child, element.Mark());
      out.push_back(convert(element, child));
    }
    return out;
  }

  Json map(const YAML::Node& node, const Path& path) {
    Json out = Json::object();
    for (const auto& entry : node) {
      if (!entry.first.IsScalar()) {
        error(path, entry.first.Mark(), "keys must be plain strings");
        continue;
      }
      const std::string key = entry.first.Scalar();
      if (!is_valid_utf8(key)) {
        error(path, entry.first.Mark(), "keys must be valid UTF-8");
        continue;
      }
      const Path child = path.key(key);
      if (out.contains(key)) {
        error(child, entry.first.Mark(), "duplicate key \"" + key + "\"");
        continue;
      }
      mark(child, entry.first.Mark());
      out[key] = convert(entry.second, child);
    }
    return out;
  }

  void error(const Path& path, const YAML::Mark& mark, std::string message) {
    doc_.errors.push_back({doc_.file, mark.is_null() ? 0 : mark.line + 1, path.display(),
                           std::move(message)});
  }

  Document& doc_;
};

}  // namespace

Document read_yaml(std::string_view text, const std::string& file) {
  Document doc;
  doc.file = file;
  try {
    const YAML::Node root = YAML::Load(std::string(text));
    YamlConverter converter(doc);
    doc.tree = converter.convert(root, Path{});
    if (doc.tree.is_null()) doc.tree = Json::object();  // an empty file
  } catch (const YAML::Exception& e) {
    doc.errors.push_back({file, e.mark.is_null() ? 0 : e.mark.line + 1, "",
                          "invalid YAML: " + e.msg});
  }
  return doc;
}

}  // namespace phlow::config
