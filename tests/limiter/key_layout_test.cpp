// The one key layout (SPEC.md, "Redis layout"): <prefix><limit>:<identifier>, unsafe or
// long identifiers stored as sha256:<hex>, and the presence set <prefix>gateways.
#include <catch2/catch.hpp>
#include <string>

#include "limiter/key_layout.hpp"

using phlow::limiter::KeyLayout;
using phlow::limiter::sha256_hex;

TEST_CASE("key layout: builds, splits and names the presence set") {
  const KeyLayout keys;  // the default prefix
  CHECK(keys.prefix() == "phlow:ratelimit:");
  CHECK(keys.key("auth", "agent-7") == "phlow:ratelimit:auth:agent-7");
  // Unsafe or long identifiers are hashed; a stored form is used as it is.
  const std::string unsafe = "a b*c";
  CHECK(keys.key("auth", unsafe) == "phlow:ratelimit:auth:sha256:" + sha256_hex(unsafe));
  const std::string longer(129, 'x');
  CHECK(keys.key("auth", longer) == "phlow:ratelimit:auth:sha256:" + sha256_hex(longer));
  CHECK(keys.key("auth", std::string(128, 'x')) == "phlow:ratelimit:auth:" + std::string(128, 'x'));
  const std::string stored = "sha256:" + sha256_hex(longer);
  CHECK(keys.key_of_stored("auth", stored) == keys.key("auth", longer));
  CHECK(keys.key_of_stored("role", "agent-7") == keys.key("role", "agent-7"));

  // Splitting gives back what was built.
  std::string key;
  keys.key(key, "per_ip", "2001:db8::/64");
  CHECK(keys.limit_and_identifier(key) == "per_ip:2001:db8::/64");
  CHECK(keys.stored_identifier(key, "per_ip") == "2001:db8::/64");
  keys.key(key, "auth", longer);  // the buffer is reused
  CHECK(keys.stored_identifier(key, "auth") == stored);

  CHECK(keys.presence_key() == "phlow:ratelimit:gateways");
  const KeyLayout custom("app1:");
  CHECK(custom.key("auth", "t") == "app1:auth:t");
  CHECK(custom.presence_key() == "app1:gateways");
  CHECK(custom.limit_and_identifier(custom.key("auth", "t")) == "auth:t");
}

TEST_CASE("key layout: Cluster slots are CRC16 of the key or of its hash tag") {
  CHECK(KeyLayout::slot("123456789") == 12739);  // the CRC16/XMODEM check value 0x31C3
  CHECK(KeyLayout::slot("somekey") == 11058);     // Redis' CLUSTER KEYSLOT examples
  CHECK(KeyLayout::slot("foo{hash_tag}") == 2515);
  CHECK(KeyLayout::slot("bar{hash_tag}") == 2515);
  CHECK(KeyLayout::slot("foo{bar}{zap}") == KeyLayout::slot("bar"));
  CHECK(KeyLayout::slot("foo{{bar}}zap") == KeyLayout::slot("{bar"));
  CHECK(KeyLayout::slot("foo{}{bar}") == KeyLayout::slot("foo{}{bar}"));
  CHECK(KeyLayout::slot("foo{}{bar}") != KeyLayout::slot("bar"));
}
