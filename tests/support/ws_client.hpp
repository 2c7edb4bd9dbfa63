#pragma once
// A blocking WebSocket client for end-to-end tests (Beast's websocket inside
// ws_client.cpp). Every operation has a deadline and throws std::runtime_error naming
// the operation when it passes: a test never hangs.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "support/http_client.hpp"

namespace phlow::test {

class WsClient {
 public:
  // Connects to 127.0.0.1:port and asks for a WebSocket at `target` with `headers`.
  // Does not throw when the server declines: status() then says how.
  WsClient(std::uint16_t port, std::string target, const HeaderList& headers = {},
           std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
  // wss://: a TLS handshake (verifying as `tls` says) before the upgrade.
  WsClient(std::uint16_t port, const HttpsOptions& tls, std::string target,
           std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
  ~WsClient();
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  int status() const;  // 101 when upgraded, else the status of the answer
  bool open() const { return status() == 101; }
  std::string header(std::string_view name) const;  // of the answer to the upgrade

  void send(std::string_view text);
  std::string receive();  // the next message
  // True when the server ends the connection (a close frame, EOF or reset) within
  // `timeout`; false when it is still open then. Messages arriving meanwhile are dropped.
  bool wait_closed(std::chrono::milliseconds timeout);
  void close();  // a close frame, then the close

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  void connect(std::uint16_t port);
  void upgrade(const std::string& target, const HeaderList& headers);
};

}  // namespace phlow::test
