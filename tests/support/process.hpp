#pragma once
// A child process owned by one test: the real gateway, the demo upstream, nginx...
// Its stdout and stderr go to files in a private temporary directory, so a test can
// poll them for a line and print them when it fails.

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace phlow::test {

using EnvVars = std::vector<std::pair<std::string, std::string>>;

// Returns a new, empty directory under $TMPDIR (or /tmp). It and its contents are
// removed when the test process exits normally.
std::string temp_dir();

// Writes `text` to `dir`/`name` (replacing it) and returns the file's path.
std::string write_file(const std::string& dir, const std::string& name, std::string_view text);

class Process {
 public:
  // Starts `executable` (a path, or a name looked up in PATH) with `args` and this
  // process's environment plus `env` (which overrides variables of the same name).
  // stdin is /dev/null. Throws when the executable is not found or fork fails. The
  // child gets SIGKILL if the thread that started it dies.
  Process(std::string executable, std::vector<std::string> args, EnvVars env = {});
  // SIGKILLs the child if it still runs, reaps it, removes the output files.
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  // Whether the child has not been reaped yet (it may be a zombie until wait_exit).
  bool running();

  std::string read_stdout() const;
  std::string read_stderr() const;
  // Both, labelled, for a failing test's INFO/FAIL message.
  std::string output() const;

  // Polls stdout and stderr until `pattern` matches one of them. Returns the match
  // groups ([0] is the whole match), or nullopt when `timeout` passed or the child
  // exited without printing it.
  std::optional<std::vector<std::string>> wait_for_output(const std::regex& pattern,
                                                          std::chrono::milliseconds timeout);
  // The same for a plain substring; returns whether it appeared.
  bool wait_for_output(std::string_view substring, std::chrono::milliseconds timeout);

  // Sends `signo` to the child (no-op once it has been reaped).
  void signal(int signo);
  // Waits for the child to exit. Returns its exit code, 128 + N when signal N killed
  // it, or nullopt when it still runs after `timeout` (it is left running).
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  // SIGKILL and reap; returns as wait_exit. No-op when already reaped.
  std::optional<int> kill();

 private:
  bool reap(bool block);

  std::string dir_;
  std::string stdout_path_;
  std::string stderr_path_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

// A "Key:" value of /proc/PID/status in kB (VmRSS, VmHWM), or -1 when absent.
long proc_status_kb(pid_t pid, const std::string& key);
// How many file descriptors process `pid` holds open.
std::size_t open_fds(pid_t pid);

}  // namespace phlow::test
