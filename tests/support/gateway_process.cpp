#include "support/gateway_process.hpp"

#include <regex>
#include <stdexcept>

namespace phlow::test {

std::string gateway_path() { return PHLOW_GATEWAY_PATH; }

namespace {

// Tests run side by side: unless a test sets its own, the admin listener takes any
// free port instead of the default 9090.
std::string with_free_admin_port(const std::string& yaml) {
  if (yaml.find("\nadmin:") != std::string::npos || yaml.starts_with("admin:")) return yaml;
  return yaml + "\nadmin: { listen: \"127.0.0.1:0\" }\n";
}

}  // namespace

GatewayProcess::GatewayProcess(const std::string& yaml, EnvVars env,
                               std::vector<std::string> extra_args) {
  config_path_ = write_file(temp_dir(), "gateway.yaml", with_free_admin_port(yaml));
  std::vector<std::string> args = {"--config", config_path_};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  process_ = std::make_unique<Process>(gateway_path(), args, std::move(env));
  static const std::regex listening(R"(listening on [^ ]*:(\d+) with)");
  auto match = process_->wait_for_output(listening, std::chrono::seconds(10));
  if (!match) throw std::runtime_error("phlow-gateway did not start:\n" + process_->output());
  port_ = static_cast<std::uint16_t>(std::stoi((*match)[1]));
  static const std::regex admin(R"(admin listening on [^ ]*:(\d+))");
  if (auto a = process_->wait_for_output(admin, std::chrono::seconds(5))) {
    admin_port_ = static_cast<std::uint16_t>(std::stoi((*a)[1]));
  }
}

void GatewayProcess::rewrite_config(const std::string& yaml) const {
  const auto slash = config_path_.rfind('/');
  write_file(config_path_.substr(0, slash), config_path_.substr(slash + 1),
             with_free_admin_port(yaml));
}

RunResult run_gateway(std::vector<std::string> args, EnvVars env) {
  Process process(gateway_path(), std::move(args), std::move(env));
  RunResult result;
  auto code = process.wait_exit(std::chrono::seconds(10));
  result.exit_code = code ? *code : -1;
  result.out = process.read_stdout();
  result.err = process.read_stderr();
  return result;
}

std::string exact_redis_yaml(const std::string& url) {
  return "redis: { url: \"" + url + "\", timeout: 1s }\n";
}

}  // namespace phlow::test
