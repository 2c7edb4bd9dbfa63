// One table of cases, run against the in-memory algorithms and against the Lua
// script in a real redis-server (with the script's test-only injected clock): both
// must give the same decision, field by field, at every step.
#include <hiredis/hiredis.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "limiter/memory_backend.hpp"
#include "redis/check_script.hpp"
#include "support/redis_server.hpp"

using namespace phlow::limiter;

namespace {

struct Step {
  std::int64_t advance_ms;  // before this step
  int identifier;           // which identifier requests
  std::int64_t cost = 1;    // units the request weighs in each limit (or debits)
  bool debit = false;       // consumes `cost` unconditionally (cost_from_response)
  int release = -1;         // gives back the concurrency slots step `release` took
};

struct Case {
  std::string name;
  std::vector<Limit> limits;  // all applied to each request
  std::vector<Step> steps;
  std::string expected;       // 'A' allowed, 'R' rejected, 'D' debited, 'F' slots freed
};

std::vector<Step> burst(int n, std::int64_t advance_first = 0, int identifier = 0) {
  std::vector<Step> steps(static_cast<std::size_t>(n), Step{0, identifier});
  if (n > 0) steps[0].advance_ms = advance_first;
  return steps;
}

std::vector<Step> join(std::vector<std::vector<Step>> parts) {
  std::vector<Step> out;
  for (auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Limit make(std::string name, std::int64_t n, std::int64_t w, Algorithm a, std::int64_t burst = 0,
           bool shadow = false) {
  return Limit{.name = std::move(name), .requests = n, .window_ms = w, .algorithm = a,
               .burst = burst, .shadow = shadow};
}

// Gives back the slots step `taken_by` took.
Step release_of(int taken_by) { return Step{0, 0, 1, false, taken_by}; }

// A limit whose requests weigh units (config cost / cost_from_response).
Limit weighted(Limit l) {
  l.weighted = true;
  return l;
}

// Requests of `cost` units (or debits of that many) at one time.
std::vector<Step> costs(std::vector<std::int64_t> units, std::int64_t advance_first = 0,
                        bool debit = false) {
  std::vector<Step> steps;
  for (std::int64_t u : units) steps.push_back({steps.empty() ? advance_first : 0, 0, u, debit});
  return steps;
}

const std::vector<Case>& cases() {
  using A = Algorithm;
  static const std::vector<Case> table = {
      {"sliding_log: N per window, then one frees as the oldest leaves",
       {make("log", 3, 1000, A::sliding_log)},
       join({burst(4), burst(1, 400), burst(1, 599), burst(1, 1), burst(2, 0)}),
       "AAARRRAAA"},
      {"sliding_log: no boundary burst",
       {make("log", 2, 1000, A::sliding_log)},
       join({burst(2, 900), burst(2, 200), burst(1, 700), burst(2, 100)}),
       "AARRRAA"},
      {"sliding_window: previous window weighs in",
       {make("win", 4, 1000, A::sliding_window)},
       join({burst(5, 100), burst(2, 1000), burst(2, 500), burst(1, 400)}),
       "AAAARRRAAA"},
      {"sliding_window: idle windows reset",
       {make("win", 2, 500, A::sliding_window)},
       join({burst(3), burst(3, 1500)}),
       "AARAAR"},
      {"token_bucket: burst then steady rate",
       {make("tb", 10, 1000, A::token_bucket, 3)},
       join({burst(4), burst(1, 99), burst(1, 1), burst(2, 200)}),
       "AAARRAAA"},
      {"token_bucket: uneven emission interval rounds up",
       {make("tb", 7, 1000, A::token_bucket)},
       join({burst(8), burst(1, 142), burst(1, 1)}),
       "AAAAAAARRA"},
      {"composed: the tighter limit rejects, the other consumes nothing",
       {make("a", 5, 1000, A::sliding_log), make("b", 2, 1000, A::sliding_window)},
       join({burst(3), burst(2, 2000)}),
       "AARAA"},
      {"composed: shadow limit reports but never blocks",
       {make("real", 3, 1000, A::sliding_log), make("shadow", 1, 1000, A::sliding_log, 0, true)},
       burst(4),
       "AAAR"},
      {"identifiers are independent",
       {make("log", 1, 1000, A::sliding_log)},
       {{0, 0}, {0, 1}, {0, 0}, {0, 2}, {1000, 0}},
       "AARAA"},
      {"cost: sliding_log sums units; a request that does not fit consumes nothing",
       {weighted(make("log", 10, 1000, A::sliding_log))},
       join({costs({4, 4, 4, 2, 1}), costs({3}, 300), costs({1}, 699), costs({4, 1}, 1), costs({2}, 300)}),
       "AARARRRAAA"},
      {"cost: sliding_log retry waits for enough units to leave",
       {weighted(make("log", 6, 1000, A::sliding_log))},
       join({costs({1}), costs({1}, 100), costs({1}, 100), costs({3}, 100), costs({6}, 100),
             costs({5}, 500), costs({5}, 100), costs({4}, 100), costs({4}, 199), costs({4}, 1)}),
       "AAAARRRRRA"},
      {"cost: sliding_window weighs units",
       {weighted(make("win", 10, 1000, A::sliding_window))},
       join({costs({6, 4, 1}, 100), costs({3}, 1000), costs({5}, 300), costs({2}, 200), costs({10}, 1000)}),
       "AARRAAR"},
      {"cost: token_bucket takes cost intervals",
       {weighted(make("tb", 10, 1000, A::token_bucket, 5))},
       join({costs({3, 3, 2, 1}), costs({2}, 199), costs({2}, 1), costs({5}, 500)}),
       "ARARRAA"},
      {"cost over the quota never fits",
       {weighted(make("log", 5, 1000, A::sliding_log)), weighted(make("tb", 5, 1000, A::token_bucket, 2))},
       join({costs({6}), costs({3}), costs({1})}),
       "RRA"},
      {"debit: sliding_log overdrawn past the limit, rejected until units leave",
       {weighted(make("log", 10, 1000, A::sliding_log))},
       join({costs({1, 1}), costs({15}, 10, true), costs({1}, 10), costs({1}, 980), costs({1}, 10),
             costs({1}, 10)}),
       "AADRRAA"},
      {"debit: sliding_window and token_bucket owe what responses used",
       {weighted(make("win", 10, 1000, A::sliding_window)), weighted(make("tb", 10, 1000, A::token_bucket))},
       join({costs({1}, 50), costs({10}, 10, true), costs({1}, 100), costs({1}, 2000), costs({0, 3}, 0, true),
             costs({1}, 0)}),
       "ADRADDA"},
      {"concurrency: N in flight; a slot given back frees one",
       {make("slots", 2, 60'000, A::concurrency)},
       {{0, 0}, {10, 0}, {10, 0}, release_of(0), {10, 0}, {10, 0}, release_of(1), release_of(4), {10, 0},
        {0, 0}, {0, 1}},
       "AARFARFFAAA"},
      {"concurrency: a rejection by another limit takes no slot, and the reverse",
       {make("slots", 1, 60'000, A::concurrency), make("log", 3, 1000, A::sliding_log)},
       {{0, 0}, {0, 0}, release_of(0), {0, 0}, release_of(3), {0, 0}, release_of(5), {0, 0}, {2000, 0}},
       "ARFAFAFRA"},
      // A batch that repeats one check (a hot client): the script decides such a run
      // at once when all of it fits, each check answering its own remaining and reset.
      {"runs: repeated checks that all fit answer each their own remaining and reset",
       {make("log", 20, 1000, A::sliding_log), make("win", 20, 1000, A::sliding_window),
        make("tb", 20, 1000, A::token_bucket, 12)},
       join({burst(5), burst(4, 300), burst(6, 1100), burst(8, 10)}),
       "AAAAAAAAAAAAAAAAAAAAARR"},
      {"runs: a token_bucket run's reset moves one interval per check",
       {make("tb", 7, 1000, A::token_bucket, 5)},
       join({burst(4), burst(3, 500), burst(2, 1)}),
       "AAAAAAAAR"},
      {"runs: a run that does not fit at once is decided check by check",
       {make("log", 5, 1000, A::sliding_log)},
       join({burst(3), burst(4, 10), burst(3, 990), burst(1, 10)}),
       "AAAAARRAAAA"},
      {"cost: two limits, the tighter rejects and neither consumes",
       {weighted(make("a", 10, 1000, A::sliding_log)), weighted(make("b", 4, 1000, A::sliding_window))},
       join({costs({3, 2, 1, 1}), costs({4}, 2000)}),
       "ARARA"},
  };
  return table;
}

// The slot id step `index` takes in a concurrency limit.
std::string_view slot_of(std::size_t index) {
  static const std::vector<std::string> ids = [] {
    std::vector<std::string> out;
    for (int i = 0; i < 100; ++i) out.push_back("slot-" + std::to_string(i));
    return out;
  }();
  return ids.at(index);
}

std::vector<Descriptor> descriptors_for(const Case& c, std::size_t index, const std::string& prefix) {
  const Step& step = c.steps[index];
  std::vector<Descriptor> out;
  for (const Limit& l : c.limits) {
    out.push_back({&l, build_key(prefix, l.name, "id" + std::to_string(step.identifier)), step.cost,
                   l.algorithm == Algorithm::concurrency ? slot_of(index) : std::string_view{}});
  }
  return out;
}

// What the memory backend decides for `step`.
Decision memory_step(MemoryBackend& memory, const Step& step, const std::vector<Descriptor>& ds) {
  return step.debit ? memory.debit(ds) : memory.check(ds);
}

char outcome_of(const Step& step, const Decision& d) { return step.debit ? 'D' : d.allowed ? 'A' : 'R'; }

// A release step: gives back, in memory and in Redis, the slots the step it names took
// (only when that step was allowed: a rejected one took none).
void release_step(const Case& c, std::size_t index, const std::string& prefix, const std::string& outcomes,
                  MemoryBackend& memory, redisContext* redis) {
  const auto taken_by = static_cast<std::size_t>(c.steps[index].release);
  REQUIRE(taken_by < index);
  if (outcomes.at(taken_by) != 'A') return;
  for (const Descriptor& d : descriptors_for(c, taken_by, prefix)) {
    if (d.limit->algorithm != Algorithm::concurrency) continue;
    memory.release(d);
    const std::string slot(d.slot);
    auto* r = static_cast<redisReply*>(redisCommand(redis, "ZREM %s %s", d.key.c_str(), slot.c_str()));
    REQUIRE(r != nullptr);
    CHECK(r->integer == 1);
    freeReplyObject(r);
  }
}

// The two forms of the check code: a script (EVAL, every Redis) and a function
// (FCALL of the library the handshake loads on Redis 7).
const std::vector<std::string> kForms = {"EVAL", "FCALL"};

// Loads the check library into `c`'s server once.
void load_library(redisContext* c) {
  auto* r = static_cast<redisReply*>(redisCommand(c, "FUNCTION LOAD REPLACE %b", redis::kCheckLibrary.data(),
                                                  redis::kCheckLibrary.size()));
  REQUIRE(r != nullptr);
  INFO((r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : std::string()));
  REQUIRE(r->type == REDIS_REPLY_STRING);
  CHECK(std::string(r->str, r->len) == redis::kCheckLibraryName);
  freeReplyObject(r);
}

// A blocking connection to `server`, its check library loaded.
redisContext* connect_loaded(const phlow::test::RedisServer& server) {
  redisContext* redis = redisConnect("127.0.0.1", server.port());
  REQUIRE((redis != nullptr && redis->err == 0));
  load_library(redis);
  return redis;
}

// Runs the check code at `now_us` through a blocking hiredis connection: one call (of
// `form`, "EVAL" or "FCALL") deciding `checks` one after the other (a batch of one, or
// more).
std::vector<Decision> redis_checks_at(redisContext* c, const std::string& form,
                                      const std::vector<std::vector<Descriptor>>& checks,
                                      std::int64_t now_us, const std::vector<bool>& debits = {}) {
  std::size_t keys = 0;
  for (const auto& ds : checks) keys += ds.size();
  const std::string_view code = form == "EVAL" ? redis::kCheckScript : redis::kCheckFunction;
  std::vector<std::string> args = {form, std::string(code), std::to_string(keys)};
  for (const auto& ds : checks) {
    for (const auto& d : ds) args.push_back(d.key);
  }
  args.push_back(std::to_string(now_us));
  for (std::size_t k = 0; k < checks.size(); ++k) {
    const auto& ds = checks[k];
    args.push_back(std::to_string(ds.size()));
    std::string mode = k < debits.size() && debits[k] ? "3" : "1";
    bool words = false;
    for (const auto& d : ds) words = words || d.cost != 1 || !d.slot.empty();
    for (const auto& d : ds) {
      if (words) mode += " " + (d.slot.empty() ? std::to_string(d.cost) : std::string(d.slot));
    }
    args.push_back(mode);
    for (const auto& d : ds) {
      args.push_back(std::to_string(static_cast<int>(d.limit->algorithm)) + " " +
                     std::to_string(d.limit->requests) + " " + std::to_string(d.limit->window_ms) +
                     " " + std::to_string(d.limit->burst) + " " + (d.limit->shadow ? "1" : "0"));
    }
  }
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* r = static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
  REQUIRE(r != nullptr);
  INFO((r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : std::string()));
  REQUIRE(r->type == REDIS_REPLY_ARRAY);
  REQUIRE(r->elements == 1 + 4 * keys);
  std::vector<Decision> out;
  std::size_t at = 1;
  for (const auto& ds : checks) {
    Decision d;
    d.count = ds.size();
    d.now_ms = r->element[0]->integer;
    for (std::size_t i = 0; i < ds.size(); ++i, at += 4) {
      auto** e = &r->element[at];
      d.results[i] = LimitResult{e[0]->integer == 1, ds[i].limit->shadow, ds[i].limit->quota(),
                                 e[1]->integer, e[2]->integer, e[3]->integer};
    }
    summarize(d);
    out.push_back(d);
  }
  freeReplyObject(r);
  return out;
}

Decision redis_check_at(redisContext* c, const std::string& form, const std::vector<Descriptor>& ds,
                        std::int64_t now_us, bool debit = false) {
  return redis_checks_at(c, form, {ds}, now_us, {debit}).at(0);
}

void check_same(const Decision& m, const Decision& r) {
  REQUIRE(m.count == r.count);
  CHECK(m.now_ms == r.now_ms);
  for (std::size_t k = 0; k < m.count; ++k) {
    INFO("limit " << k);
    CHECK(m.results[k].allowed == r.results[k].allowed);
    CHECK(m.results[k].remaining == r.results[k].remaining);
    CHECK(m.results[k].reset_ms == r.results[k].reset_ms);
    CHECK(m.results[k].retry_after_ms == r.results[k].retry_after_ms);
  }
  CHECK(m.allowed == r.allowed);
  CHECK(m.rejected_by == r.rejected_by);
}

}  // namespace

TEST_CASE("in-memory algorithms and the Redis script agree on every case") {
  phlow::test::RedisServer server;
  redisContext* redis = connect_loaded(server);

  for (const std::string& form : kForms) {
    for (const Case& c : cases()) {
      SECTION(form + ": " + c.name) {
        const std::string prefix = "sem:" + form + ":" + c.name + ":";
        auto clock = std::make_shared<ManualClock>(1'700'000'000'123'456);
        MemoryBackend memory(clock);
        std::string outcomes;
        for (std::size_t i = 0; i < c.steps.size(); ++i) {
          clock->advance_ms(c.steps[i].advance_ms);
          const Step& step = c.steps[i];
          if (step.release >= 0) {
            release_step(c, i, prefix, outcomes, memory, redis);
            outcomes += 'F';
            continue;
          }
          const auto ds = descriptors_for(c, i, prefix);
          const Decision m = memory_step(memory, step, ds);
          const Decision r = redis_check_at(redis, form, ds, clock->now_us(), step.debit);
          INFO("case " << c.name << ", step " << i);
          check_same(m, r);
          outcomes += outcome_of(step, m);
        }
        CHECK(outcomes == c.expected);
      }
    }
  }
  redisFree(redis);
}

// The gateway sends the checks of one loop turn as one script call: the steps that
// happen at the same time (advance 0) go as one batch here, and must be decided as the
// in-memory algorithms decide them one after the other.
TEST_CASE("the Redis script decides a batch of checks as the same checks one by one") {
  phlow::test::RedisServer server;
  redisContext* redis = connect_loaded(server);

  std::size_t batched = 0;
  for (const std::string& form : kForms) {
    for (const Case& c : cases()) {
      SECTION(form + ": " + c.name) {
        const std::string prefix = "batch:" + form + ":" + c.name + ":";
        auto clock = std::make_shared<ManualClock>(1'700'000'000'123'456);
        MemoryBackend memory(clock);
        std::string outcomes;
        std::size_t i = 0;
        while (i < c.steps.size()) {
          clock->advance_ms(c.steps[i].advance_ms);
          if (c.steps[i].release >= 0) {  // not a check: between batches
            release_step(c, i, prefix, outcomes, memory, redis);
            outcomes += 'F';
            ++i;
            continue;
          }
          std::vector<std::vector<Descriptor>> batch;
          std::vector<Decision> expected;
          std::vector<bool> debits;
          std::vector<const Step*> steps;
          do {
            const Step& step = c.steps[i];
            batch.push_back(descriptors_for(c, i, prefix));
            expected.push_back(memory_step(memory, step, batch.back()));
            debits.push_back(step.debit);
            steps.push_back(&step);
            ++i;
          } while (i < c.steps.size() && c.steps[i].advance_ms == 0 && c.steps[i].release < 0);
          const auto got = redis_checks_at(redis, form, batch, clock->now_us(), debits);
          batched += batch.size() > 1 ? 1 : 0;
          for (std::size_t k = 0; k < batch.size(); ++k) {
            INFO("case " << c.name << ", batch of " << batch.size() << ", check " << k);
            check_same(expected[k], got[k]);
            outcomes += outcome_of(*steps[k], got[k]);
          }
        }
        CHECK(outcomes == c.expected);
        bool burst = false;
        for (std::size_t k = 1; k < c.steps.size(); ++k) {
          burst = burst ||
                  (c.steps[k].advance_ms == 0 && c.steps[k].release < 0 && c.steps[k - 1].release < 0);
        }
        CHECK((batched > 0) == burst);  // a case with a burst was sent as batches
      }
    }
  }
  redisFree(redis);
}
