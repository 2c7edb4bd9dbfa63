#pragma once
// Scraping a gateway's /metrics in the end-to-end tests: the exposition, checked
// well-formed, and one sample's value.

#include <cstdint>
#include <string>

#include <catch2/catch.hpp>

#include "exposition_parser.hpp"
#include "support/http_client.hpp"

namespace phlow::test {

inline Exposition scrape(std::uint16_t admin_port) {
  const HttpResponse r = http_request(admin_port, "GET", "/metrics");
  REQUIRE(r.status == 200);
  Exposition e = parse_exposition(r.body);
  INFO(r.body);
  REQUIRE(e.error.empty());
  return e;
}

// A sample's value; -1 when the exposition does not hold it.
inline double metric(const Exposition& e, const std::string& key) {
  const auto it = e.samples.find(key);
  return it == e.samples.end() ? -1 : it->second;
}

}  // namespace phlow::test
