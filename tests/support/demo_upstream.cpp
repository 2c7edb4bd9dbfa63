#include "support/demo_upstream.hpp"

#include <chrono>
#include <regex>
#include <stdexcept>

namespace phlow::test {

std::string demo_upstream_path() { return PHLOW_DEMO_UPSTREAM_PATH; }

DemoUpstream::DemoUpstream(int threads)
    : process_(std::make_unique<Process>(
          demo_upstream_path(),
          std::vector<std::string>{"--listen", "127.0.0.1:0", "--threads",
                                   std::to_string(threads)})) {
  static const std::regex listening(R"(listening on 127\.0\.0\.1:(\d+)\n)");
  const auto match = process_->wait_for_output(listening, std::chrono::seconds(10));
  if (!match) {
    throw std::runtime_error("phlow-demo-upstream did not start\n" + process_->output());
  }
  port_ = static_cast<std::uint16_t>(std::stoi((*match)[1]));
}

}  // namespace phlow::test
