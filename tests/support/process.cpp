#include "support/process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace phlow::test {

namespace {

namespace fs = std::filesystem;

// Directories handed out by temp_dir(), removed at exit.
class TempDirRegistry {
 public:
  ~TempDirRegistry() {
    std::error_code ec;
    for (const auto& dir : dirs_) fs::remove_all(dir, ec);
  }
  void add(const std::string& dir) {
    std::lock_guard lock(mutex_);
    dirs_.push_back(dir);
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> dirs_;
};

std::string make_temp_dir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base && *base ? base : "/tmp") + "/phlow-test-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("mkdtemp(" + pattern + "): " + std::strerror(errno));
  }
  return pattern;
}

std::string read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Returns the path execve should run: `name` itself when it holds a '/', else the
// first executable match in PATH.
std::string resolve_executable(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    if (::access(name.c_str(), X_OK) != 0) throw std::runtime_error("not executable: " + name);
    return name;
  }
  const char* path_env = std::getenv("PATH");
  std::istringstream dirs(path_env ? path_env : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  throw std::runtime_error("executable not found in PATH: " + name);
}

std::vector<std::string> merged_environment(const EnvVars& extra) {
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const auto name = entry.substr(0, entry.find('='));
    bool overridden = false;
    for (const auto& [key, value] : extra) overridden = overridden || key == name;
    if (!overridden) out.emplace_back(entry);
  }
  for (const auto& [key, value] : extra) out.push_back(key + "=" + value);
  return out;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

std::string temp_dir() {
  static TempDirRegistry registry;
  std::string dir = make_temp_dir();
  registry.add(dir);
  return dir;
}

std::string write_file(const std::string& dir, const std::string& name, std::string_view text) {
  const std::string path = dir + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
  return path;
}

Process::Process(std::string executable, std::vector<std::string> args, EnvVars env)
    : dir_(make_temp_dir()), stdout_path_(dir_ + "/stdout"), stderr_path_(dir_ + "/stderr") {
  // Everything the child needs is prepared here: after fork it only makes syscalls.
  const std::string path = resolve_executable(executable);
  args.insert(args.begin(), executable);
  std::vector<std::string> env_strings = merged_environment(env);
  std::vector<char*> argv = pointers(args);
  std::vector<char*> envp = pointers(env_strings);
  const pid_t parent = ::getpid();

  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    const int in = ::open("/dev/null", O_RDONLY);
    const int out = ::open(stdout_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = ::open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0 || err < 0) ::_exit(126);
    ::dup2(in, STDIN_FILENO);
    ::dup2(out, STDOUT_FILENO);
    ::dup2(err, STDERR_FILENO);
    ::close_range(3, ~0U, 0);  // listening sockets of the test must not leak into it
    ::execve(path.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
}

Process::~Process() {
  kill();
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

bool Process::reap(bool block) {
  if (pid_ <= 0) return true;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
  if (r == 0) return false;
  if (r == pid_) {
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  pid_ = -1;  // reaped (or lost: ECHILD)
  return true;
}

bool Process::running() { return !reap(false); }

std::string Process::read_stdout() const { return read_whole(stdout_path_); }
std::string Process::read_stderr() const { return read_whole(stderr_path_); }

std::string Process::output() const {
  return "--- stdout ---\n" + read_stdout() + "--- stderr ---\n" + read_stderr();
}

std::optional<std::vector<std::string>> Process::wait_for_output(
    const std::regex& pattern, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const bool exited = !running();  // checked before reading: no output is lost
    for (const std::string& text : {read_stdout(), read_stderr()}) {
      std::smatch match;
      if (std::regex_search(text, match, pattern)) {
        return std::vector<std::string>(match.begin(), match.end());
      }
    }
    if (exited || std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

bool Process::wait_for_output(std::string_view substring, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const bool exited = !running();
    if (read_stdout().find(substring) != std::string::npos ||
        read_stderr().find(substring) != std::string::npos) {
      return true;
    }
    if (exited || std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void Process::signal(int signo) {
  if (pid_ > 0) ::kill(pid_, signo);
}

std::optional<int> Process::wait_exit(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!reap(false)) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return exit_code_;
}

std::optional<int> Process::kill() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    reap(true);
  }
  return exit_code_;
}

long proc_status_kb(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(key + ":")) return std::stol(line.substr(key.size() + 1));
  }
  return -1;
}

std::size_t open_fds(pid_t pid) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    ++n;
  }
  return n;
}

}  // namespace phlow::test
