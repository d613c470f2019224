// One NCCL all-reduce over the first two GPUs, run in a forked child process
// so that a hang (the usual symptom of P2P that is reported but broken)
// cannot hang the caller: the child is killed after `timeout`.
//
// CUDA builds only. Call it before this process initialises CUDA (a CUDA
// context does not survive fork) and while it has no other threads. The
// child inherits the environment, so NCCL_P2P_DISABLE and NCCL_DEBUG apply.
#ifndef DUET_TOOLS_DOCTOR_NCCL_CHECK_H_
#define DUET_TOOLS_DOCTOR_NCCL_CHECK_H_

#include "absl/time/time.h"
#include "tools/doctor/system_report.h"

namespace duet::doctor {

// ran is false (skipped_reason set) when the child finds fewer than two
// GPUs; otherwise ok / timed_out / value_correct / error describe the run.
NcclCheck RunNcclAllReduceCheck(absl::Duration timeout);

}  // namespace duet::doctor

#endif  // DUET_TOOLS_DOCTOR_NCCL_CHECK_H_
