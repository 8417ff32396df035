// `runtime project`: predicts iteration time, exposed communication, scaling efficiency and the
// network bandwidth a server needs, for a list of node counts, from one node's measured (or
// FLOP-derived) step times. `runtime bench-allreduce`: measures the link parameters the
// projection needs on the real Gloo allreduce. Both return the process exit code: 0 success,
// 1 failure (unreadable input), 2 usage error; errors go to `err`, naming the file or flag.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace gradflow::runtime::project {

int ProjectMain(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int BenchAllreduceMain(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace gradflow::runtime::project
