#include <atomic>
#include <catch2/catch.hpp>
#include <thread>
#include <vector>

#include "limiter/memory_backend.hpp"

using namespace phlow::limiter;

namespace {
Limit log_limit(std::int64_t n, std::int64_t w = 60'000) {
  return Limit{.name = "l", .requests = n, .window_ms = w};
}
}  // namespace

TEST_CASE("memory: 16 threads on one identifier get exactly the limit") {
  MemoryBackend memory;
  for (Algorithm a : {Algorithm::sliding_log, Algorithm::sliding_window, Algorithm::token_bucket}) {
    Limit limit{.name = std::string(to_string(a)), .requests = 100, .window_ms = 3'600'000,
                .algorithm = a};
    const Descriptor d{&limit, build_key("t:", limit.name, "shared")};
    std::atomic<int> allowed{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 16; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 50; ++i) allowed += memory.check(std::span(&d, 1)).allowed ? 1 : 0;
      });
    }
    for (auto& th : threads) th.join();
    INFO(to_string(a));
    CHECK(allowed.load() == 100);
  }
}

TEST_CASE("memory: a rejected composed request consumes nothing anywhere") {
  auto clock = std::make_shared<ManualClock>();
  MemoryBackend memory(clock);
  Limit wide = log_limit(10), tight = log_limit(2);
  tight.name = "tight";
  const std::vector<Descriptor> ds = {{&wide, "k:wide:x"}, {&tight, "k:tight:x"}};
  for (int i = 0; i < 5; ++i) memory.check(ds);
  const Decision d = memory.check(ds);
  CHECK_FALSE(d.allowed);
  CHECK(d.rejected_by == 1);
  // wide counted only the 2 allowed requests.
  CHECK(memory.peek(ds[0]).remaining == 10 - 2 - 1);
}

TEST_CASE("memory: expired keys are reclaimed") {
  auto clock = std::make_shared<ManualClock>();
  MemoryBackend memory(clock, {.max_keys = 64, .shards = 1});
  Limit limit = log_limit(5, 1000);
  for (int i = 0; i < 50; ++i) {
    const Descriptor d{&limit, "k:" + std::to_string(i)};
    memory.check(std::span(&d, 1));
  }
  CHECK(memory.size() == 50);
  clock->advance_ms(20'000);
  const Descriptor d{&limit, "k:new"};
  memory.check(std::span(&d, 1));
  CHECK(memory.size() == 1);
}

TEST_CASE("memory: the key cap holds - and eviction never grants a fresh budget") {
  auto clock = std::make_shared<ManualClock>();
  MemoryBackend memory(clock, {.max_keys = 8, .shards = 1});
  Limit limit = log_limit(3, 60'000);
  const Descriptor victim{&limit, "k:victim"};
  for (int i = 0; i < 3; ++i) REQUIRE(memory.check(std::span(&victim, 1)).allowed);
  REQUIRE_FALSE(memory.check(std::span(&victim, 1)).allowed);
  // Push the victim out with many other identifiers.
  for (int i = 0; i < 100; ++i) {
    const Descriptor other{&limit, "k:other" + std::to_string(i)};
    memory.check(std::span(&other, 1));
    CHECK(memory.size() <= 8);
  }
  // Whether or not it was evicted, the victim is still limited within its window.
  CHECK_FALSE(memory.check(std::span(&victim, 1)).allowed);
  clock->advance_ms(60'001);
  CHECK(memory.check(std::span(&victim, 1)).allowed);
}

TEST_CASE("memory: reset forgets one key only") {
  MemoryBackend memory;
  Limit limit = log_limit(1);
  const Descriptor a{&limit, "k:a"}, b{&limit, "k:b"};
  memory.check(std::span(&a, 1));
  memory.check(std::span(&b, 1));
  memory.reset("k:a");
  CHECK(memory.check(std::span(&a, 1)).allowed);
  CHECK_FALSE(memory.check(std::span(&b, 1)).allowed);
}

TEST_CASE("limits are validated") {
  CHECK(validate(Limit{.name = "x", .requests = 0, .window_ms = 1000}) != "");
  CHECK(validate(Limit{.name = "x", .requests = -5, .window_ms = 1000}) != "");
  CHECK(validate(Limit{.name = "x", .requests = 5, .window_ms = 0}) != "");
  CHECK(validate(Limit{.name = "", .requests = 5, .window_ms = 10}) != "");
  CHECK(validate(Limit{.name = "a:b", .requests = 5, .window_ms = 10}) != "");
  CHECK(validate(Limit{.name = "x", .requests = 5, .window_ms = 10, .burst = 3}) ==
        "burst applies to token_bucket only");
  CHECK(validate(Limit{.name = "x", .requests = 5, .window_ms = 10}) == "");
}

TEST_CASE("keys: long or unsafe identifiers are hashed - short ones kept") {
  CHECK(build_key("p:", "auth", "abc123") == "p:auth:abc123");
  const std::string huge(1 << 20, 'x');
  const std::string key = build_key("p:", "auth", huge);
  CHECK(key.size() == std::string("p:auth:sha256:").size() + 64);
  CHECK(build_key("p:", "auth", "a\r\nDEL *") != "p:auth:a\r\nDEL *");
  CHECK(build_key("p:", "auth", "a\r\nDEL *").starts_with("p:auth:sha256:"));
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("keys: an identifier is kept only when every byte is printable ASCII, not space or * ? [ ]") {
  // Every byte value, at every position of identifiers of several lengths (the check
  // goes 16 bytes at a time, then byte by byte for the rest).
  const auto allowed = [](unsigned char c) {
    return c > 0x20 && c < 0x7f && c != '*' && c != '?' && c != '[' && c != ']';
  };
  int wrong = 0;
  for (const std::size_t length : {1, 15, 16, 17, 33, 64, 70}) {
    for (int value = 0; value < 256; ++value) {
      const auto c = static_cast<unsigned char>(value);
      for (std::size_t at = 0; at < length; ++at) {
        std::string identifier(length, 'a');
        identifier[at] = static_cast<char>(c);
        const bool kept = build_key("p:", "l", identifier) == "p:l:" + identifier;
        if (kept != allowed(c)) {
          ++wrong;
          UNSCOPED_INFO("length " << length << ", byte " << value << " at " << at << (kept ? " kept" : " hashed"));
        }
      }
    }
  }
  CHECK(wrong == 0);
  CHECK(build_key("p:", "l", "sha256:abc").starts_with("p:l:sha256:"));
  CHECK(build_key("p:", "l", "sha256:abc") != "p:l:sha256:abc");  // never mistaken for a hash
}

TEST_CASE("memory: entries outlive the Limit objects that created them (config reload)") {
  auto clock = std::make_shared<ManualClock>();
  MemoryBackend memory(clock, {.max_keys = 4, .shards = 1});
  {
    auto old_limit = std::make_unique<Limit>(log_limit(2, 60'000));
    for (int i = 0; i < 4; ++i) {
      const Descriptor d{old_limit.get(), "k:old" + std::to_string(i)};
      memory.check(std::span(&d, 1));
    }
  }  // the old config is gone; its entries remain
  Limit new_limit = log_limit(2, 60'000);
  for (int i = 0; i < 20; ++i) {  // evicts the old entries (ASan checks the accesses)
    const Descriptor d{&new_limit, "k:new" + std::to_string(i)};
    memory.check(std::span(&d, 1));
  }
  CHECK(memory.size() <= 4);
}

TEST_CASE("memory: a share enforces limit over N of every algorithm - at least 1") {
  CHECK(share_of(log_limit(10), 3).requests == 3);
  CHECK(share_of(log_limit(10), 1).requests == 10);
  CHECK(share_of(log_limit(2), 5).requests == 1);
  Limit bucket{.name = "b", .requests = 10, .window_ms = 60'000,
               .algorithm = Algorithm::token_bucket, .burst = 6};
  CHECK(share_of(bucket, 2).requests == 5);
  CHECK(share_of(bucket, 2).burst == 3);
  CHECK(share_of(bucket, 2).quota() == 3);
  CHECK(share_of(bucket, 100).burst == 1);

  auto clock = std::make_shared<ManualClock>();
  MemoryBackend memory(clock);
  for (Algorithm a : {Algorithm::sliding_log, Algorithm::sliding_window, Algorithm::token_bucket}) {
    Limit limit{.name = std::string(to_string(a)), .requests = 10, .window_ms = 60'000,
                .algorithm = a};
    const Descriptor d{&limit, build_key("share:", limit.name, "x")};
    INFO(to_string(a));
    int allowed = 0;
    for (int i = 0; i < 10; ++i) {
      const Decision decision = memory.check(std::span(&d, 1), 3);
      if (decision.allowed) ++allowed;
      CHECK(decision.results[0].limit == 3);  // the part this instance enforces
    }
    CHECK(allowed == 3);
    CHECK(memory.peek(d, 3).allowed == false);
    // Counted requests keep counting under the whole limit (a bucket's time is spent
    // at the part's slower rate: it may count as more, never as less).
    if (a != Algorithm::token_bucket) CHECK(memory.peek(d).remaining == 6);
  }
}
