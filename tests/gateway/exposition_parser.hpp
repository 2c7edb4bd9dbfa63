#pragma once
// A strict little reader of the Prometheus text format 0.0.4 for the metrics tests:
// every line is a # HELP / # TYPE comment or `name{labels} value`, each sample's family
// was declared before it, and label values use only the \\ \" \n escapes.

#include <cctype>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <string>

namespace phlow::test {

struct Exposition {
  std::map<std::string, double> samples;  // key: name{labels} as written
  std::map<std::string, std::string> types;
  std::string error;  // empty when the text is well-formed
};

namespace exposition_detail {

inline bool is_name_char(char c, bool first) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':' ||
         (!first && std::isdigit(static_cast<unsigned char>(c)));
}

// Reads a name at `pos`; empty when there is none.
inline std::string read_name(const std::string& line, std::size_t& pos) {
  const std::size_t start = pos;
  while (pos < line.size() && is_name_char(line[pos], pos == start)) ++pos;
  return line.substr(start, pos - start);
}

// Reads {k="v",...} at `pos`; false on any malformed label.
inline bool read_labels(const std::string& line, std::size_t& pos) {
  if (pos >= line.size() || line[pos] != '{') return true;
  ++pos;
  while (true) {
    if (read_name(line, pos).empty()) return false;
    if (line.compare(pos, 2, "=\"") != 0) return false;
    pos += 2;
    for (; pos < line.size() && line[pos] != '"'; ++pos) {
      if (line[pos] != '\\') continue;
      const char next = pos + 1 < line.size() ? line[pos + 1] : '\0';
      if (next != '\\' && next != '"' && next != 'n') return false;
      ++pos;
    }
    if (pos >= line.size()) return false;
    ++pos;  // closing quote
    if (pos < line.size() && line[pos] == ',') {
      ++pos;
      continue;
    }
    if (pos < line.size() && line[pos] == '}') {
      ++pos;
      return true;
    }
    return false;
  }
}

// The family a sample belongs to: histograms add _bucket, _sum and _count.
inline std::string family_of(const std::string& name, const Exposition& e) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string s = suffix;
    if (name.size() > s.size() && name.ends_with(s)) {
      const std::string base = name.substr(0, name.size() - s.size());
      auto it = e.types.find(base);
      if (it != e.types.end() && it->second == "histogram") return base;
    }
  }
  return name;
}

inline std::string check_sample(const std::string& line, Exposition& e) {
  std::size_t pos = 0;
  const std::string name = read_name(line, pos);
  if (name.empty()) return "no metric name";
  if (!read_labels(line, pos)) return "bad labels";
  if (pos >= line.size() || line[pos] != ' ') return "no space before the value";
  const std::string key = line.substr(0, pos);
  const std::string value = line.substr(pos + 1);
  char* end = nullptr;
  const double v = std::strtod(value.c_str(), &end);
  if (value.empty() || *end != '\0') return "bad value";
  if (!e.types.contains(family_of(name, e))) return "sample before its # TYPE";
  if (!e.samples.emplace(key, v).second) return "duplicate sample";
  return {};
}

inline std::string check_comment(const std::string& line, Exposition& e) {
  std::istringstream in(line);
  std::string hash, kind, name, rest;
  in >> hash >> kind >> name;
  std::getline(in, rest);
  if (kind == "HELP") return rest.size() > 1 ? "" : "empty help";
  if (kind != "TYPE") return "unknown comment";
  const std::string type = rest.empty() ? "" : rest.substr(1);
  if (type != "counter" && type != "gauge" && type != "histogram") return "unknown type";
  if (type == "counter" && !name.ends_with("_total")) return "counter without _total";
  e.types[name] = type;
  return {};
}

}  // namespace exposition_detail

inline Exposition parse_exposition(const std::string& text) {
  Exposition e;
  std::istringstream in(text);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    std::string problem;
    if (!line.starts_with("phlow_gateway_") && !line.starts_with("# "))
      problem = "not a comment and not prefixed phlow_gateway_";
    else if (line.starts_with("# "))
      problem = exposition_detail::check_comment(line, e);
    else
      problem = exposition_detail::check_sample(line, e);
    if (!problem.empty()) {
      e.error = "line " + std::to_string(number) + ": " + problem + ": " + line;
      return e;
    }
  }
  if (!text.empty() && text.back() != '\n') e.error = "no final newline";
  return e;
}

}  // namespace phlow::test
