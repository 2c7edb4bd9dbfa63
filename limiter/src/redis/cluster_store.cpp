#include "redis/cluster_store.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <array>
#include <set>
#include <utility>
#include <vector>

#include "limiter/key_layout.hpp"
#include "redis/check_command.hpp"
#include "redis/cluster_map.hpp"
#include "redis/connection.hpp"
#include "redis/exchange.hpp"
#include "redis/node_source.hpp"
#include "redis/presence.hpp"

namespace phlow::limiter::redis {

namespace asio = boost::asio;
using boost::system::error_code;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
using ReplyHandler = asio::any_completion_handler<void(error_code, Value)>;

namespace {

constexpr std::chrono::milliseconds kRefreshEvery{5000};
constexpr std::chrono::milliseconds kRefreshWhileDown{250};
constexpr std::chrono::milliseconds kRefreshAtMostEvery{100};
constexpr int kNoNode = -1;

struct Node {
  RedisNode address;
  std::string endpoint;
  std::shared_ptr<Connection> connection;  // null while it serves no slot
  int health_id = -1;
  bool serving = false;  // owns slots in the current map
};

}  // namespace

class ClusterStore::State : public std::enable_shared_from_this<State> {
 public:
  State(asio::any_io_executor executor, RedisOptions options, std::shared_ptr<RedisHealth> health)
      : executor_(std::move(executor)),
        options_(std::move(options)),
        health_(std::move(health)),
        transport_(make_transport(options_)),
        refresh_timer_(executor_) {
    owner_.fill(kNoNode);
    // Until the first slot map is in, the masters' connections are not even known:
    // this entry keeps the health "connecting" (startup waits for it, /readyz says
    // so) until the map has named them all and registered their connections.
    map_health_id_ = health_->add_connection();
  }

  void start() { asio::co_spawn(executor_, refresh_loop(shared_from_this()), asio::detached); }

  void stop() {
    stopped_ = true;
    refresh_timer_.cancel();
    if (presence_) presence_->stop();
    for (auto& node : nodes_) {
      if (node->connection) node->connection->stop();
    }
  }

  // Every master of the map is connected.
  bool ready() const {
    if (!mapped_) return false;
    for (const auto& node : nodes_) {
      if (node->serving && !(node->connection && node->connection->ready())) return false;
    }
    return true;
  }

  void check(std::span<const Descriptor> descriptors, CheckMode mode, CheckHandler handler);
  void reset(std::string_view key, ResetHandler handler);
  // Sends `command` to the master of `key`; with `require_one`, an answer other than
  // the integer 1 is StoreError::bad_reply.
  void on_key(std::string_view key, std::string command, bool require_one, ResetHandler handler);
  void presence(std::string key, std::string member) {
    const std::uint16_t slot = KeyLayout::slot(key);
    presence_ = std::make_shared<Presence>(
        executor_,
        [weak = weak_from_this(), slot]() -> std::shared_ptr<Connection> {
          auto self = weak.lock();
          if (!self || self->owner_[slot] == kNoNode) return nullptr;
          return self->nodes_[static_cast<std::size_t>(self->owner_[slot])]->connection;
        },
        health_, std::move(key), std::move(member), options_.timeout);
    presence_->start();
  }

 private:
  struct Call;

  // Sends the command `encode` writes to node `index` (after ASKING when `asking`),
  // naming the check code in `form` (none: as the node's connection does now),
  // follows one -MOVED/-ASK (`hops`), sends again in the retry_form() after an error
  // that names a missing function or script, and completes `done` with the reply
  // (error replies included) or a StoreError.
  template <class Encode>
  void send(int index, bool asking, std::optional<ScriptForm> form, Encode encode, int hops,
            Clock::time_point deadline, ReplyHandler done) {
    Node* node = index == kNoNode ? nullptr : nodes_[static_cast<std::size_t>(index)].get();
    if (node == nullptr || !node->connection || !node->connection->ready()) {
      request_refresh();
      asio::post(executor_, [done = std::move(done)]() mutable {
        std::move(done)(StoreError::not_connected, Value{});
      });
      return;
    }
    Connection& connection = *node->connection;
    if (asking) {
      command_.clear();
      CommandWriter(command_, 1).arg("ASKING");
      connection.exec(command_, deadline, [](error_code, Value) {});
    }
    const ScriptForm used = form.value_or(connection.script_form());
    encode(command_, used, connection.script_sha());
    connection.exec(
        command_, deadline,
        [self = shared_from_this(), index, asking, used, encode, hops, deadline,
         done = std::move(done)](error_code ec, Value v) mutable {
          if (!ec && v.is_error()) {
            if (auto redirect = parse_redirect(v.str); redirect && hops > 0) {
              self->health_->count_redirect(redirect->ask);
              const int target = self->node_index(redirect->node);
              if (!redirect->ask) {
                self->owner_[redirect->slot] = static_cast<std::int16_t>(target);
                self->request_refresh();
              }
              self->send(target, redirect->ask, std::nullopt, encode, hops - 1, deadline, std::move(done));
              return;
            }
            if (const auto retry = retry_form(used, v)) {
              // A node that never loaded the code (a promoted replica, a flush).
              if (used == ScriptForm::function) self->drop_library(index);
              self->send(index, asking, retry, encode, hops, deadline, std::move(done));
              return;
            }
          }
          std::move(done)(ec, std::move(v));
        });
  }

  int owner_index(std::uint16_t slot) const { return owner_[slot]; }

  void drop_library(int index) {
    Node& node = *nodes_[static_cast<std::size_t>(index)];
    if (node.connection) node.connection->drop_library();
  }

  // The node at `address`, added (and connected) when new, reconnected when it had
  // been retired.
  int node_index(const RedisNode& address) {
    const std::string endpoint = address.endpoint();
    std::size_t i = 0;
    while (i < nodes_.size() && nodes_[i]->endpoint != endpoint) ++i;
    if (i == nodes_.size()) {
      auto node = std::make_unique<Node>();
      node->address = address;
      node->endpoint = endpoint;
      nodes_.push_back(std::move(node));
    }
    Node& node = *nodes_[i];
    if (!node.connection && !stopped_) {
      node.health_id = health_->add_connection();
      node.connection = std::make_shared<Connection>(
          executor_, options_.url, fixed_node(node.address), transport_, connection_options(options_),
          [health = health_, id = node.health_id](bool up, const std::string& detail) {
            health->report(id, up, detail);
          });
      node.connection->start();
    }
    return static_cast<int>(i);
  }

  void request_refresh() { refresh_timer_.cancel(); }

  asio::awaitable<void> refresh_loop(std::shared_ptr<State> self);
  asio::awaitable<void> refresh_once();
  void apply(const std::vector<SlotRange>& ranges);
  void refund(const std::shared_ptr<Call>& call);

  asio::any_io_executor executor_;
  RedisOptions options_;
  std::shared_ptr<RedisHealth> health_;
  Transport transport_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::array<std::int16_t, kClusterSlots> owner_{};
  bool mapped_ = false;
  int map_health_id_ = -1;      // the slot map's entry in the health (see the constructor)
  bool map_reported_ = false;
  asio::steady_timer refresh_timer_;
  bool stopped_ = false;
  std::string command_;  // reused for every command this thread sends
  std::shared_ptr<Presence> presence_;
};

// A check whose keys are in several slots: one call per slot, all in flight at once.
struct ClusterStore::State::Call {
  Call(std::span<const Descriptor> d, bool c, CheckHandler h)
      : descriptors(d), groups(d), consume(c), handler(std::move(h)) {}
  std::span<const Descriptor> descriptors;
  SlotGroups groups;
  bool consume;
  CheckHandler handler;
  std::size_t outstanding = 0;
  StoreError error = StoreError::none;
  Decision merged;
  // Per group, what its call added (Consume::report), -1 for nothing.
  std::array<std::array<std::int64_t, kMaxLimitsPerCheck>, kMaxLimitsPerCheck> added{};
};

void ClusterStore::State::check(std::span<const Descriptor> descriptors, CheckMode check_mode,
                                CheckHandler handler) {
  const bool consume = check_mode == CheckMode::consume;
  const auto deadline = Clock::now() + options_.timeout;
  const SlotGroups groups(descriptors);
  if (groups.count <= 1) {
    // One slot: one script call, all-or-nothing inside Redis, as in standalone.
    const Consume mode = consume_of(check_mode);
    const int index = groups.count == 0 ? kNoNode : owner_index(groups.slot[0]);
    health_->count_script_call(1);
    send(index, false, std::nullopt,
         [descriptors, mode](std::string& out, ScriptForm form, std::string_view sha) {
           encode_check(out, form, sha, descriptors, mode);
         },
         1, deadline,
         [descriptors, h = std::move(handler)](error_code ec, Value v) mutable {
           Decision d;
           if (!ec) ec = read_check_reply(v, descriptors, d);
           std::move(h)(ec, d);
         });
    return;
  }
  auto call = std::make_shared<Call>(descriptors, consume, std::move(handler));
  call->outstanding = call->groups.count;
  // A debit consumes in every slot whatever the others say: nothing to refund.
  const Consume mode = consume ? Consume::report : consume_of(check_mode);
  for (std::size_t g = 0; g < call->groups.count; ++g) {
    call->added[g].fill(-1);
    health_->count_script_call(g == 0 ? 1 : 0);  // one request, one call per slot
    const auto pick = call->groups.of(g);
    send(owner_index(call->groups.slot[g]), false, std::nullopt,
         [descriptors, mode, pick](std::string& out, ScriptForm form, std::string_view sha) {
           encode_check(out, form, sha, descriptors, mode, pick);
         },
         1, deadline,
         [self = shared_from_this(), call, g, mode, pick](error_code ec, Value v) {
           StoreError error = store_error_of(ec);
           if (error == StoreError::none) {
             error = read_check_reply(v, call->descriptors, call->merged, mode, pick, call->added[g].data());
           }
           if (error != StoreError::none && call->error == StoreError::none) call->error = error;
           if (--call->outstanding > 0) return;
           if (call->error == StoreError::none) summarize(call->merged);
           // A rejected or failed request consumes nothing: take back what the
           // allowed slots' calls added.
           if (call->consume && (call->error != StoreError::none || !call->merged.allowed)) {
             self->refund(call);
           }
           if (call->error != StoreError::none) {
             std::move(call->handler)(call->error, Decision{});
           } else {
             std::move(call->handler)(error_code{}, call->merged);
           }
         });
  }
}

void ClusterStore::State::refund(const std::shared_ptr<Call>& call) {
  const auto deadline = Clock::now() + std::max(options_.timeout, options_.connect_timeout);
  for (std::size_t g = 0; g < call->groups.count; ++g) {
    const auto& added = call->added[g];
    bool any = false;
    for (std::size_t i = 0; i < call->groups.size[g]; ++i) any = any || added[i] >= 0;
    if (!any) continue;
    health_->count_refund();
    const auto pick = call->groups.of(g);
    send(owner_index(call->groups.slot[g]), false, ScriptForm::source,
         [call, g, pick](std::string& out, ScriptForm, std::string_view) {
           encode_refund(out, call->descriptors, pick, call->added[g].data());
         },
         1, deadline, [call](error_code ec, Value v) {
           if (ec || v.is_error()) {
             spdlog::warn("Redis Cluster: a refund failed ({}); the limit holds one extra request until "
                          "its window frees it", ec ? ec.message() : v.str.substr(0, 200));
           }
         });
  }
}

void ClusterStore::State::reset(std::string_view key, ResetHandler handler) {
  std::string command;
  CommandWriter(command, 2).arg("DEL").arg(key);
  on_key(key, std::move(command), false, std::move(handler));
}

void ClusterStore::State::on_key(std::string_view key, std::string command, bool require_one,
                                 ResetHandler handler) {
  send(owner_index(KeyLayout::slot(key)), false, ScriptForm::source,
       [command = std::move(command)](std::string& out, ScriptForm, std::string_view) { out = command; },
       1, Clock::now() + options_.timeout, [require_one, h = std::move(handler)](error_code ec, Value v) mutable {
         if (!ec && v.is_error()) ec = StoreError::server_error;
         if (!ec && require_one && !(v.type == Value::Type::integer && v.integer == 1)) ec = StoreError::bad_reply;
         std::move(h)(ec);
       });
}

asio::awaitable<void> ClusterStore::State::refresh_loop([[maybe_unused]] std::shared_ptr<State> self) {
  while (!stopped_) {
    const auto started = Clock::now();
    co_await refresh_once();
    if (stopped_) break;
    refresh_timer_.expires_after(ready() ? kRefreshEvery : kRefreshWhileDown);
    co_await refresh_timer_.async_wait(use_tuple);  // request_refresh() cuts it short
    if (Clock::now() - started < kRefreshAtMostEvery) {
      refresh_timer_.expires_at(started + kRefreshAtMostEvery);
      co_await refresh_timer_.async_wait(use_tuple);
    }
  }
}

asio::awaitable<void> ClusterStore::State::refresh_once() {
  // Ask the masters that answer now first, then the others, then the seeds.
  std::vector<RedisNode> candidates;
  const auto answers = [](const Node& node) {
    return node.serving && node.connection && node.connection->ready();
  };
  for (const auto& node : nodes_) {
    if (answers(*node)) candidates.push_back(node->address);
  }
  for (const auto& node : nodes_) {
    if (!answers(*node)) candidates.push_back(node->address);
  }
  candidates.insert(candidates.end(), options_.url.nodes.begin(), options_.url.nodes.end());
  std::string failures;
  std::set<std::string> asked;
  for (const RedisNode& node : candidates) {
    if (stopped_ || !asked.insert(node.endpoint()).second) continue;
    std::vector<std::string> commands;
    if (!options_.url.password.empty()) {
      std::string auth;
      CommandWriter w(auth, options_.url.username.empty() ? 2 : 3);
      w.arg("AUTH");
      if (!options_.url.username.empty()) w.arg(options_.url.username);
      w.arg(options_.url.password);
      commands.push_back(std::move(auth));
    }
    std::string slots;
    CommandWriter(slots, 2).arg("CLUSTER").arg("SLOTS");
    commands.push_back(std::move(slots));
    auto result = co_await exchange(executor_, transport_, node, std::move(commands),
                                    Clock::now() + options_.connect_timeout);
    if (stopped_) co_return;
    std::string why;
    if (auto* error = std::get_if<std::string>(&result)) {
      why = *error;
    } else {
      const auto& replies = std::get<std::vector<Value>>(result);
      if (replies.size() > 1 && replies.front().is_error()) {
        why = "AUTH: " + replies.front().str;
      } else {
        auto ranges = parse_cluster_slots(replies.back(), node);
        if (auto* ok = std::get_if<std::vector<SlotRange>>(&ranges)) {
          apply(*ok);
          co_return;
        }
        why = std::get<std::string>(ranges);
      }
    }
    failures += (failures.empty() ? "" : "; ") + node.endpoint() + ": " + why;
  }
  if (!mapped_ && !failures.empty()) {
    health_->report(map_health_id_, false, "Redis Cluster: no node gave the slot map (" + failures.substr(0, 400) + ")");
    // Not one node told where the slots are: the checks go to the failure policy.
    static std::atomic<std::int64_t> last_ms{0};
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            Clock::now().time_since_epoch()).count();
    if (now_ms - last_ms.exchange(now_ms) >= 10'000) {
      spdlog::warn("Redis Cluster: no node gave the slot map ({})", failures.substr(0, 400));
    }
  }
}

void ClusterStore::State::apply(const std::vector<SlotRange>& ranges) {
  std::array<std::int16_t, kClusterSlots> owner;
  owner.fill(kNoNode);
  for (const SlotRange& range : ranges) {
    const int index = node_index(range.master);
    for (std::size_t s = range.first; s <= range.last; ++s) owner[s] = static_cast<std::int16_t>(index);
  }
  std::vector<bool> serving(nodes_.size(), false);
  for (std::int16_t index : owner) {
    if (index != kNoNode) serving[static_cast<std::size_t>(index)] = true;
  }
  // A master that lost its slots to another (a failover): counted once per move.
  std::set<std::pair<int, int>> moves;
  for (std::size_t s = 0; s < kClusterSlots; ++s) {
    const int before = owner_[s];
    if (before != kNoNode && before != owner[s] && owner[s] != kNoNode &&
        !serving[static_cast<std::size_t>(before)]) {
      moves.emplace(before, owner[s]);
    }
  }
  for (const auto& [from, to] : moves) {
    health_->note_master_change(nodes_[static_cast<std::size_t>(from)]->endpoint,
                                nodes_[static_cast<std::size_t>(to)]->endpoint);
  }
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    Node& node = *nodes_[i];
    node.serving = serving[i];
    if (!node.serving && node.connection) {
      node.connection->stop();
      node.connection.reset();
      health_->retire_connection(node.health_id);
    }
  }
  owner_ = owner;
  mapped_ = true;
  if (!map_reported_) {  // after the masters' connections registered above
    map_reported_ = true;
    health_->report(map_health_id_, true,
                    options_.url.nodes.empty() ? std::string("cluster") : options_.url.nodes.front().endpoint());
  }
}

ClusterStore::ClusterStore(asio::any_io_executor executor, RedisOptions options,
                           std::shared_ptr<RedisHealth> health)
    : health_(health), state_(std::make_shared<State>(std::move(executor), std::move(options), std::move(health))) {}

ClusterStore::~ClusterStore() { stop(); }

void ClusterStore::start() { state_->start(); }
void ClusterStore::stop() { state_->stop(); }
bool ClusterStore::ready() const { return state_->ready(); }

void ClusterStore::async_check(std::span<const Descriptor> descriptors, CheckMode mode,
                               CheckHandler handler) {
  state_->check(descriptors, mode, std::move(handler));
}

void ClusterStore::async_reset(std::string_view key, ResetHandler handler) {
  state_->reset(key, std::move(handler));
}

void ClusterStore::async_release(std::string_view key, std::string_view slot, ResetHandler handler) {
  std::string command;
  encode_release(command, key, slot);
  state_->on_key(key, std::move(command), false, std::move(handler));
}

void ClusterStore::async_renew(std::string_view key, std::string_view slot, std::int64_t window_ms,
                               ResetHandler handler) {
  std::string command;
  encode_renew(command, key, slot, window_ms);
  state_->on_key(key, std::move(command), true, std::move(handler));
}

void ClusterStore::start_presence(std::string key, std::string member) {
  state_->presence(std::move(key), std::move(member));
}

}  // namespace phlow::limiter::redis
