#include "redis/sentinel.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <array>
#include <charconv>
#include <optional>

#include "redis/exchange.hpp"
#include "redis/pipeline.hpp"

namespace phlow::limiter::redis {

namespace asio = boost::asio;
using boost::system::error_code;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::string_view kSwitchMaster = "+switch-master";

namespace {

// A port from a sentinel's reply; 0 when it is not one.
std::uint16_t port_of(std::string_view text) {
  unsigned port = 0;
  const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (ec != std::errc{} || p != text.data() + text.size() || port == 0 || port > 65535) return 0;
  return static_cast<std::uint16_t>(port);
}

// "<master name> <old ip> <old port> <new ip> <new port>" -> the new node, when it is
// about `master`.
std::optional<RedisNode> switched_to(std::string_view message, std::string_view master) {
  std::array<std::string_view, 5> parts;
  for (auto& part : parts) {
    const auto space = message.find(' ');
    part = message.substr(0, space);
    message = space == std::string_view::npos ? std::string_view{} : message.substr(space + 1);
  }
  if (parts[0] != master || parts[3].empty()) return std::nullopt;
  const std::uint16_t port = port_of(parts[4]);
  if (port == 0) return std::nullopt;
  return RedisNode{std::string(parts[3]), port};
}

}  // namespace

SentinelSource::SentinelSource(asio::any_io_executor executor, RedisUrl url, Transport transport,
                               std::string password, std::chrono::milliseconds timeout)
    : executor_(std::move(executor)),
      url_(std::move(url)),
      transport_(std::move(transport)),
      password_(std::move(password)),
      timeout_(timeout),
      retry_(executor_) {}

std::string SentinelSource::command_prefix() const {
  std::string out;
  if (!password_.empty()) CommandWriter(out, 2).arg("AUTH").arg(password_);
  return out;
}

asio::awaitable<NodeSource::Located> SentinelSource::locate() {
  auto self = shared_from_this();
  std::string failures;
  const std::size_t n = url_.nodes.size();
  for (std::size_t i = 0; i < n && !stopped_; ++i) {
    const std::size_t index = (first_ + i) % n;
    const RedisNode& sentinel = url_.nodes[index];
    std::vector<std::string> commands;
    if (!password_.empty()) commands.push_back(command_prefix());
    std::string ask;
    CommandWriter(ask, 3).arg("SENTINEL").arg("get-master-addr-by-name").arg(url_.master_name);
    commands.push_back(std::move(ask));
    auto result = co_await exchange(executor_, transport_, sentinel, std::move(commands),
                                    Stream::Clock::now() + timeout_);
    std::string why;
    if (auto* error = std::get_if<std::string>(&result)) {
      why = *error;
    } else {
      const auto& replies = std::get<std::vector<Value>>(result);
      const Value& answer = replies.back();
      if (replies.size() > 1 && replies.front().is_error()) {
        why = "AUTH: " + replies.front().str;
      } else if (answer.is_error()) {
        why = answer.str;
      } else if (answer.type != Value::Type::array) {
        why = "knows no master named \"" + url_.master_name + "\"";
      } else if (answer.elements.size() == 2 && port_of(answer.elements[1].str) != 0) {
        first_ = index;
        co_return RedisNode{answer.elements[0].str, port_of(answer.elements[1].str)};
      } else {
        why = "unexpected reply to SENTINEL get-master-addr-by-name";
      }
    }
    failures += (failures.empty() ? "" : "; ") + ("sentinel " + sentinel.endpoint() + ": " + why);
  }
  co_return "no sentinel named the master \"" + url_.master_name + "\" (" + failures + ")";
}

void SentinelSource::watch(std::function<void(const std::string& why)> abandon) {
  abandon_ = std::move(abandon);
  asio::co_spawn(executor_, subscribe_loop(shared_from_this()), asio::detached);
}

void SentinelSource::stop() {
  stopped_ = true;
  abandon_ = nullptr;
  retry_.cancel();
  if (subscription_) subscription_->close();
}

asio::awaitable<void> SentinelSource::subscribe_loop([[maybe_unused]] std::shared_ptr<SentinelSource> self) {
  std::size_t next = 0;
  while (!stopped_) {
    const RedisNode& sentinel = url_.nodes[(first_ + next++) % url_.nodes.size()];
    const std::string why = co_await listen(sentinel);
    if (stopped_) break;
    spdlog::debug("Sentinel subscription to {} ended: {}", sentinel.endpoint(), why);
    retry_.expires_after(std::chrono::milliseconds(500));
    co_await retry_.async_wait(use_tuple);
  }
}

asio::awaitable<std::string> SentinelSource::listen(const RedisNode& sentinel) {
  auto stream = make_stream(executor_, transport_);
  subscription_ = stream;
  if (std::string why = co_await stream->open(sentinel, Stream::Clock::now() + timeout_); !why.empty()) {
    co_return why;
  }
  if (stopped_) co_return "stopped";
  std::string failure;
  Pipeline pipeline([&failure](Pipeline::Handler, error_code, Value v) {
    if (v.is_error()) failure = v.str;
  });
  pipeline.set_push_handler([this](Value v) {
    // ["message", "+switch-master", "<name> <old ip> <old port> <new ip> <new port>"]
    if (v.type != Value::Type::array || v.elements.size() != 3 || v.elements[0].str != "message" ||
        v.elements[1].str != kSwitchMaster) {
      return;
    }
    if (auto node = switched_to(v.elements[2].str, url_.master_name); node && abandon_) {
      abandon_("Sentinel: master \"" + url_.master_name + "\" switched to " + node->endpoint());
    }
  });
  const auto far = Stream::Clock::time_point::max();
  if (!password_.empty()) pipeline.push(command_prefix(), far, Stream::Clock::now(), [](error_code, Value) {});
  std::string subscribe;
  CommandWriter(subscribe, 2).arg("SUBSCRIBE").arg(kSwitchMaster);
  pipeline.push(subscribe, far, Stream::Clock::now(), [](error_code, Value) {});
  std::string out;
  pipeline.take_output(out);
  auto [wec, written] = co_await async_write(*stream, asio::buffer(out), use_tuple);
  if (wec) co_return wec.message();
  std::array<char, 4096> buffer;
  while (!stopped_) {
    auto [ec, n] = co_await async_read_some(*stream, asio::buffer(buffer), use_tuple);
    if (ec) co_return ec.message();
    if (!pipeline.feed(buffer.data(), n)) co_return "protocol error";
    if (!failure.empty()) {
      stream->close();
      co_return failure;
    }
  }
  co_return "stopped";
}

}  // namespace phlow::limiter::redis
