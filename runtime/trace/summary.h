// `runtime trace-summary FILE.json`: a plain-text digest of a trace the tracer wrote (any Chrome
// trace parses; the tables use the gradflow categories "op", "update", "allreduce", "iteration"
// and "data").
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace gradflow::runtime::trace {

// The report for the trace held in `json`; `source` names it in errors (InvalidArgument for text
// that is not JSON or not a trace).
absl::StatusOr<std::string> SummarizeTrace(const std::string& json, const std::string& source);

// args are the words after "trace-summary". Exit codes: 0 done, 1 unreadable or malformed file,
// 2 usage error.
int TraceSummaryMain(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace gradflow::runtime::trace
