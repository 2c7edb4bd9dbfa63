#pragma once
// The built phlow-demo-upstream on a free loopback port, owned by one test.

#include <cstdint>
#include <memory>
#include <string>

#include "support/process.hpp"

namespace phlow::test {

// Path of the built executable (set by tests/CMakeLists.txt).
std::string demo_upstream_path();

class DemoUpstream {
 public:
  // Starts it with --listen 127.0.0.1:0 and waits (up to 10 s) for its
  // "listening on" line. Throws with its output when it does not come.
  explicit DemoUpstream(int threads = 1);

  std::uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  Process& process() { return *process_; }

 private:
  std::unique_ptr<Process> process_;
  std::uint16_t port_ = 0;
};

}  // namespace phlow::test
