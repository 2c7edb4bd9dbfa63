#include <catch2/catch.hpp>

#include "gateway/rate_limit_response.hpp"

using phlow::config::ResponseHeaders;
using phlow::gateway::append_rate_limit_headers;
using phlow::gateway::error_body;
using phlow::gateway::HeaderList;
using phlow::gateway::rate_limited_body;
using phlow::limiter::Decision;
using phlow::limiter::LimitResult;

namespace {

constexpr std::int64_t kNow = 1764232800000;  // Unix ms
constexpr ResponseHeaders kBoth{true, true};

Decision one_limit(LimitResult result) {
  Decision d;
  d.now_ms = kNow;
  d.count = 1;
  d.results[0] = result;
  d.allowed = result.allowed || result.shadow;
  d.rejected_by = d.allowed ? phlow::limiter::kNone : 0;
  d.most_restrictive = 0;
  return d;
}

LimitResult rejected(std::int64_t retry_after_ms) {
  return LimitResult{false, false, 60, 0, kNow + retry_after_ms, retry_after_ms};
}

LimitResult allowed(std::int64_t remaining, std::int64_t reset_in_ms) {
  return LimitResult{true, false, 60, remaining, kNow + reset_in_ms, 0};
}

HeaderList headers(const Decision& d, ResponseHeaders families = kBoth,
                   const std::string& name = "auth", std::int64_t window_ms = 60000,
                   int index = 0) {
  HeaderList out;
  append_rate_limit_headers(families, d, index, name, window_ms, out);
  return out;
}

}  // namespace

TEST_CASE("headers: a rejection with retry 11.2 s") {
  CHECK(headers(one_limit(rejected(11200))) ==
        HeaderList{{"X-RateLimit-Limit", "60"},
                   {"X-RateLimit-Remaining", "0"},
                   {"X-RateLimit-Reset", "1764232812"},
                   {"RateLimit-Policy", "\"auth\";q=60;w=60"},
                   {"RateLimit", "\"auth\";r=0;t=12"},
                   {"Retry-After", "12"}});
}

TEST_CASE("headers: an allowed request has no Retry-After") {
  CHECK(headers(one_limit(allowed(59, 59001))) ==
        HeaderList{{"X-RateLimit-Limit", "60"},
                   {"X-RateLimit-Remaining", "59"},
                   {"X-RateLimit-Reset", "1764232860"},
                   {"RateLimit-Policy", "\"auth\";q=60;w=60"},
                   {"RateLimit", "\"auth\";r=59;t=60"}});
}

TEST_CASE("headers: Retry-After rounds up and is at least 1") {
  const auto retry = [](std::int64_t ms) {
    return headers(one_limit(rejected(ms)), ResponseHeaders{true, false}).at(3);
  };
  CHECK(retry(12000) == HeaderList::value_type{"Retry-After", "12"});
  CHECK(retry(12001) == HeaderList::value_type{"Retry-After", "13"});
  CHECK(retry(200) == HeaderList::value_type{"Retry-After", "1"});
  CHECK(retry(0) == HeaderList::value_type{"Retry-After", "1"});
}

TEST_CASE("headers: window and reset round up and never go negative") {
  auto d = one_limit(allowed(-3, -500));
  CHECK(headers(d, ResponseHeaders{false, true}, "burst", 1500) ==
        HeaderList{{"RateLimit-Policy", "\"burst\";q=60;w=2"},
                   {"RateLimit", "\"burst\";r=0;t=0"}});
  d.results[0].reset_ms = kNow + 1;
  CHECK(headers(d, ResponseHeaders{false, true}).at(1).second == "\"auth\";r=0;t=1");
}

TEST_CASE("headers: only the enabled families") {
  const auto d = one_limit(rejected(5000));
  CHECK(headers(d, ResponseHeaders{false, false}) == HeaderList{{"Retry-After", "5"}});
  CHECK(headers(d, ResponseHeaders{true, false}) ==
        HeaderList{{"X-RateLimit-Limit", "60"},
                   {"X-RateLimit-Remaining", "0"},
                   {"X-RateLimit-Reset", "1764232805"},
                   {"Retry-After", "5"}});
  CHECK(headers(d, ResponseHeaders{false, true}) ==
        HeaderList{{"RateLimit-Policy", "\"auth\";q=60;w=60"},
                   {"RateLimit", "\"auth\";r=0;t=5"},
                   {"Retry-After", "5"}});
}

TEST_CASE("headers: the limit at the given index") {
  Decision d = one_limit(allowed(59, 60000));
  d.count = 2;
  d.results[1] = rejected(30000);
  d.results[1].limit = 10;
  d.allowed = false;
  d.rejected_by = 1;
  CHECK(headers(d, ResponseHeaders{true, false}, "role", 60000, 1) ==
        HeaderList{{"X-RateLimit-Limit", "10"},
                   {"X-RateLimit-Remaining", "0"},
                   {"X-RateLimit-Reset", "1764232830"},
                   {"Retry-After", "30"}});
}

TEST_CASE("headers: nothing for no limit") {
  Decision d;
  d.now_ms = kNow;
  CHECK(headers(d, kBoth, "auth", 60000, phlow::limiter::kNone).empty());
  CHECK(headers(one_limit(allowed(1, 1000)), kBoth, "auth", 60000, 1).empty());
}

TEST_CASE("headers: a shadow rejection sends no Retry-After") {
  LimitResult r = rejected(4000);
  r.shadow = true;
  const auto out = headers(one_limit(r), ResponseHeaders{true, false});
  CHECK(out.size() == 3);
  CHECK(out.back() == HeaderList::value_type{"X-RateLimit-Reset", "1764232804"});
}

TEST_CASE("headers: quotes and backslashes in names are escaped") {
  CHECK(headers(one_limit(allowed(1, 1000)), ResponseHeaders{false, true}, "a\"b\\c").at(0) ==
        HeaderList::value_type{"RateLimit-Policy", "\"a\\\"b\\\\c\";q=60;w=60"});
}

TEST_CASE("body: the 429 body names the limit and the retry seconds") {
  CHECK(rate_limited_body("auth", 11200) ==
        R"({"error":"Rate limit exceeded","code":"RATE_LIMIT","limit":"auth","retry_after":12})");
  CHECK(rate_limited_body("role", 0) ==
        R"({"error":"Rate limit exceeded","code":"RATE_LIMIT","limit":"role","retry_after":1})");
  CHECK(rate_limited_body("a\"b", 1000) ==
        R"({"error":"Rate limit exceeded","code":"RATE_LIMIT","limit":"a\"b","retry_after":1})");
}

TEST_CASE("body: gateway errors") {
  CHECK(error_body("Upstream unreachable", "BAD_GATEWAY") ==
        R"({"error":"Upstream unreachable","code":"BAD_GATEWAY"})");
  CHECK(error_body("say \"hi\"\n", "X") == R"({"error":"say \"hi\"\n","code":"X"})");
  CHECK(error_body("bad \xff byte", "X") == "{\"error\":\"bad \xEF\xBF\xBD byte\",\"code\":\"X\"}");
}
