#include "common/server_process.h"

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <fstream>

namespace duet {
namespace {

sigset_t StopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  return signals;
}

}  // namespace

void BlockStopSignals() {
  const sigset_t signals = StopSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

int WaitForStopSignal() {
  const sigset_t signals = StopSignals();
  int signal = 0;
  sigwait(&signals, &signal);
  return signal;
}

bool WritePortFile(const std::string& path, int port) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream file(temporary);
    file << port << "\n";
    if (!file) return false;
  }
  return std::rename(temporary.c_str(), path.c_str()) == 0;
}

}  // namespace duet
