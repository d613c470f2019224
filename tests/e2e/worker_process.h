// A duet-worker child process for end-to-end tests: started on a free port
// (or a given one), its stderr kept in a file, killed on destruction.
#ifndef DUET_TESTS_E2E_WORKER_PROCESS_H_
#define DUET_TESTS_E2E_WORKER_PROCESS_H_

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/test_paths.h"

namespace duet::testing {

class WorkerProcess {
 public:
  // Starts duet-worker with `flags`; port 0 picks a free port.
  explicit WorkerProcess(const std::string& name, std::vector<std::string> flags = {}, int port = 0)
      : name_(name) {
    const std::string dir = BuildDir() + "/tests/e2e/tmp";
    std::system(("mkdir -p " + dir).c_str());
    port_file_ = dir + "/" + name + "." + std::to_string(getpid()) + ".port";
    log_file_ = dir + "/" + name + "." + std::to_string(getpid()) + ".log";
    std::remove(port_file_.c_str());
    std::vector<std::string> args = {BuildDir() + "/worker/duet-worker", "--port=" + std::to_string(port),
                                     "--port-file=" + port_file_, "--threads=1"};
    args.insert(args.end(), flags.begin(), flags.end());
    pid_ = fork();
    if (pid_ == 0) {
      const int log = open(log_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(log, STDERR_FILENO);
      dup2(log, STDOUT_FILENO);
      std::vector<char*> argv;
      for (std::string& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    // Wait for the port file (the server is listening once it exists).
    for (int i = 0; i < 600 && port_ == 0; ++i) {
      std::ifstream file(port_file_);
      if (!(file >> port_)) port_ = 0;
      if (port_ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (Exited()) break;
    }
  }

  ~WorkerProcess() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  bool started() const { return port_ != 0; }
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  void Signal(int signal) { kill(pid_, signal); }

  // Waits up to `timeout` for the process to exit; its exit code, or -1
  // (still running), or 128 + signal.
  int WaitExit(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!Exited() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return reaped_ ? exit_code_ : -1;
  }

  std::string Log() const {
    std::ifstream file(log_file_);
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
  }

 private:
  bool Exited() {
    if (reaped_) return true;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) != pid_) return false;
    reaped_ = true;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return true;
  }

  std::string name_, port_file_, log_file_;
  pid_t pid_ = -1;
  int port_ = 0;
  bool reaped_ = false;
  int exit_code_ = -1;
};

}  // namespace duet::testing

#endif  // DUET_TESTS_E2E_WORKER_PROCESS_H_
