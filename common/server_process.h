// What the duet server processes (duet-router, duet-worker) do alike around
// their servers: block the stop signals before any thread starts so one
// thread can wait for them, and announce the bound port in a file (how
// launchers and tests learn a port chosen by the kernel).
#ifndef DUET_COMMON_SERVER_PROCESS_H_
#define DUET_COMMON_SERVER_PROCESS_H_

#include <string>

namespace duet {

// Blocks SIGTERM and SIGINT in the calling thread (and every thread started
// from it afterwards). Call first in main.
void BlockStopSignals();
// Waits for SIGTERM or SIGINT (blocked by BlockStopSignals); returns it.
int WaitForStopSignal();

// Writes `port` to `path` atomically (a temporary file renamed), so a reader
// never sees a partial number. False when the file cannot be written.
bool WritePortFile(const std::string& path, int port);

}  // namespace duet

#endif  // DUET_COMMON_SERVER_PROCESS_H_
