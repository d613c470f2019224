// Runs a function in a forked child process with a deadline, for checks that
// may hang (a NCCL all-reduce over broken P2P): the caller gets the child's
// answer, or a timeout after which the child has been killed.
//
// Fork rules apply: call it while the process has no other threads and has
// not initialised CUDA (a CUDA context does not survive fork). The child
// runs `body`, writes its result to a pipe and leaves with _exit, so no
// atexit handler or static destructor runs in it.
#ifndef DUET_TOOLS_DOCTOR_CHILD_PROCESS_H_
#define DUET_TOOLS_DOCTOR_CHILD_PROCESS_H_

#include <functional>
#include <string>

#include "absl/time/time.h"

namespace duet::doctor {

struct ChildResult {
  bool started = false;    // false: pipe or fork failed (error says which)
  bool timed_out = false;  // no answer by the deadline; the child was killed
  std::string answer;      // what `body` returned (complete unless timed out)
  int exit_signal = 0;     // the signal that ended the child, 0 if it exited
  int exit_code = 0;
  double seconds = 0.0;  // from fork to the answer (or the deadline)
  std::string error;
};

ChildResult RunInChild(const std::function<std::string()>& body, absl::Duration timeout);

}  // namespace duet::doctor

#endif  // DUET_TOOLS_DOCTOR_CHILD_PROCESS_H_
