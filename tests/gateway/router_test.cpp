#include <catch2/catch.hpp>

#include "fake_request.hpp"
#include "gateway/router.hpp"

using phlow::config::Config;
using phlow::config::Route;
using phlow::gateway::match_route;
using phlow::gateway::test::FakeRequest;

namespace {

Route route(std::string prefix, std::vector<std::string> methods = {},
            std::optional<std::string> host = std::nullopt) {
  Route r;
  r.match.path_prefix = std::move(prefix);
  r.match.methods = std::move(methods);
  r.match.host = std::move(host);
  return r;
}

// Index of the matched route in `config.routes`, or -1.
int matched(const Config& config, const std::string& method, const std::string& target,
            const std::string& host = "example.com") {
  FakeRequest request;
  request.method = method;
  request.target = target;
  request.host = host;
  const Route* r = match_route(config, request.view());
  return r == nullptr ? -1 : static_cast<int>(r - config.routes.data());
}

}  // namespace

TEST_CASE("router: the first matching route wins") {
  Config config;
  config.routes = {route("/roles", {"POST"}), route("/roles"), route("/")};
  CHECK(matched(config, "POST", "/roles") == 0);
  CHECK(matched(config, "GET", "/roles") == 1);
  CHECK(matched(config, "GET", "/other") == 2);
}

TEST_CASE("router: a prefix matches at segment boundaries only") {
  Config config;
  config.routes = {route("/roles")};
  CHECK(matched(config, "GET", "/roles") == 0);
  CHECK(matched(config, "GET", "/roles/") == 0);
  CHECK(matched(config, "GET", "/roles/x/y") == 0);
  CHECK(matched(config, "GET", "/roles?q=1") == 0);
  CHECK(matched(config, "GET", "/rolesx") == -1);
  CHECK(matched(config, "GET", "/role") == -1);
  CHECK(matched(config, "GET", "/Roles") == -1);
  CHECK(matched(config, "GET", "/x/roles") == -1);
}

TEST_CASE("router: a prefix ending in a slash is a plain prefix") {
  Config config;
  config.routes = {route("/api/")};
  CHECK(matched(config, "GET", "/api/") == 0);
  CHECK(matched(config, "GET", "/api/v1") == 0);
  CHECK(matched(config, "GET", "/api") == -1);
  CHECK(matched(config, "GET", "/apix") == -1);
}

TEST_CASE("router: the root prefix matches every path") {
  Config config;
  config.routes = {route("/")};
  CHECK(matched(config, "GET", "/") == 0);
  CHECK(matched(config, "GET", "/anything/at/all?x") == 0);
  CHECK(matched(config, "DELETE", "/?q") == 0);
}

TEST_CASE("router: the method filter compares uppercase") {
  Config config;
  config.routes = {route("/", {"POST", "PUT"})};
  CHECK(matched(config, "POST", "/") == 0);
  CHECK(matched(config, "PUT", "/") == 0);
  CHECK(matched(config, "post", "/") == 0);
  CHECK(matched(config, "GET", "/") == -1);
  CHECK(matched(config, "POSTX", "/") == -1);
  CHECK(matched(config, "POS", "/") == -1);
}

TEST_CASE("router: the host filter compares the host without port") {
  Config config;
  config.routes = {route("/", {}, "api.example.com"), route("/admin")};
  CHECK(matched(config, "GET", "/x", "api.example.com") == 0);
  CHECK(matched(config, "GET", "/x", "example.com") == -1);
  CHECK(matched(config, "GET", "/x", "") == -1);
  CHECK(matched(config, "GET", "/admin", "other.example.com") == 1);
}

TEST_CASE("router: no route matches") {
  Config config;
  CHECK(matched(config, "GET", "/") == -1);
  config.routes = {route("/a", {"GET"}), route("/b")};
  CHECK(matched(config, "POST", "/a") == -1);
  CHECK(matched(config, "GET", "/c") == -1);
}
