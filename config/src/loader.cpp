#include "config/loader.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <limits>
#include <sstream>

#include "document.hpp"
#include "sections.hpp"

namespace phlow::config {
namespace {

// Expands ${VAR} in every string value (keys are left alone: they are names).
void expand_strings(Json& value, const Path& path, const Env& env, Diagnostics& diag) {
  if (value.is_string()) {
    auto expansion = expand_env(value.get<std::string>(), env);
    if (!expansion.error.empty()) diag.error(path, expansion.error);
    value = std::move(expansion.value);
  } else if (value.is_array()) {
    for (std::size_t i = 0; i < value.size(); ++i) expand_strings(value[i], path.index(i), env, diag);
  } else if (value.is_object()) {
    for (auto& item : value.items()) expand_strings(item.value(), path.key(item.key()), env, diag);
  }
}

Config build(const Document& doc, const Env& env, std::vector<ConfigError>& errors) {
  Diagnostics diag(doc, errors);
  Json tree = doc.tree;
  expand_strings(tree, Path{}, env, diag);
  Config config;
  ObjectReader top(diag, Node{&tree, Path{}});
  read_server(top, config);
  read_logging(top, config);
  read_redis(top, env, config.redis);
  read_admin(top, config.admin);
  read_identifiers(top, config.identifiers);
  read_response_headers(top, config.response_headers);
  read_upstreams(top, config.upstreams);
  read_limits(top, config.limits);
  read_routes(top, config);
  top.finish();
  return config;
}

// File order reads best; errors without a line (missing keys) go last.
void sort_by_line(std::vector<ConfigError>& errors) {
  std::stable_sort(errors.begin(), errors.end(), [](const auto& a, const auto& b) {
    const int la = a.line == 0 ? std::numeric_limits<int>::max() : a.line;
    const int lb = b.line == 0 ? std::numeric_limits<int>::max() : b.line;
    return la < lb;
  });
}

}  // namespace

std::optional<Format> format_for_path(std::string_view path) {
  std::string lower(path);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower.ends_with(".yaml") || lower.ends_with(".yml")) return Format::yaml;
  if (lower.ends_with(".json")) return Format::json;
  return std::nullopt;
}

LoadResult load_config_string(std::string_view text, Format format, const std::string& name,
                              const Env& env) {
  Document doc = format == Format::yaml ? read_yaml(text, name) : read_json(text, name);
  LoadResult result;
  result.errors = doc.errors;
  if (!result.errors.empty() && doc.tree.is_null()) return result;  // syntax error
  Config config = build(doc, env, result.errors);
  sort_by_line(result.errors);
  if (result.errors.empty()) result.config = std::make_shared<const Config>(std::move(config));
  return result;
}

LoadResult load_config_file(const std::string& path, const Env& env) {
  const auto format = format_for_path(path);
  if (!format) {
    return {nullptr, {{path, 0, "", "unknown file type (expected .yaml, .yml or .json)"}}};
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return {nullptr, {{path, 0, "", "cannot open the file for reading"}}};
  std::ostringstream text;
  text << in.rdbuf();
  return load_config_string(text.str(), *format, path, env);
}

LoadResult zero_config(std::string upstream_url, std::string listen, const Env& env) {
  LoadResult result;
  Config config;
  std::string why;
  if (auto url = parse_upstream_url(upstream_url, &why)) {
    config.upstreams.push_back({"default", *url});
  } else {
    result.errors.push_back({"--upstream", 0, "", "invalid upstream URL \"" + upstream_url + "\": " + why});
  }
  if (auto address = parse_listen_address(listen, &why)) {
    config.listen = *address;
  } else {
    result.errors.push_back({"--listen", 0, "", "invalid listen address \"" + listen + "\": " + why});
  }
  if (env) config.redis.url = env("REDIS_URL").value_or("");
  if (!config.redis.url.empty()) {
    if (auto url = parse_redis_url(config.redis.url, &why)) {
      config.redis.target = std::move(*url);
    } else {
      result.errors.push_back({"REDIS_URL", 0, "", why});
    }
  }
  config.limits = default_limits();
  config.routes.push_back(default_route(config));
  if (result.errors.empty()) result.config = std::make_shared<const Config>(std::move(config));
  return result;
}

}  // namespace phlow::config
