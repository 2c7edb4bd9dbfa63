#pragma once
// The built phlow-gateway, run as a real process on a free loopback port by one test.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace phlow::test {

// Path of the built executable (set by tests/CMakeLists.txt).
std::string gateway_path();

class GatewayProcess {
 public:
  // Writes `yaml` to a temp dir as gateway.yaml and starts
  // `phlow-gateway --config <it> <extra_args>`; waits (10 s at most) for its
  // "listening on HOST:PORT" log line. Give `listen: "127.0.0.1:0"` so that the port is
  // free. Throws with the gateway's output when it does not start.
  explicit GatewayProcess(const std::string& yaml, EnvVars env = {},
                          std::vector<std::string> extra_args = {});

  std::uint16_t port() const { return port_; }
  // The admin listener's port (0 when it did not start). Unless `yaml` has an admin
  // section, the fixture gives it `listen: "127.0.0.1:0"`.
  std::uint16_t admin_port() const { return admin_port_; }
  const std::string& config_path() const { return config_path_; }
  Process& process() { return *process_; }
  // Replaces the config file (for SIGHUP tests).
  void rewrite_config(const std::string& yaml) const;

 private:
  std::string config_path_;
  std::unique_ptr<Process> process_;
  std::uint16_t port_ = 0;
  std::uint16_t admin_port_ = 0;
};

// A `redis:` config section for tests that count exactly in Redis. Each check gets
// 1 s instead of the default 50 ms: on a loaded machine a late check is decided in
// memory by design (docs/RELIABILITY.md), which only the fault tests should measure.
std::string exact_redis_yaml(const std::string& url);

// Runs phlow-gateway with `args` to completion (at most 10 s) and returns
// {exit code, stdout, stderr}.
struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
RunResult run_gateway(std::vector<std::string> args, EnvVars env = {});

}  // namespace phlow::test
