// Writing Chrome Trace Event JSON: string escaping, numbers JSON can hold, and the trace file.
//
// The tracer formats each node's events into a comma-separated list of event objects (no
// brackets); WriteTraceFile wraps the lists of all nodes into one document, so the merged file is
// built without ever parsing what a node produced.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace gradflow::runtime::trace {

// Appends `text` as a JSON string literal (quotes included). Control characters, quotes and
// backslashes are escaped; bytes that are not valid UTF-8 become U+FFFD so the file always parses.
void AppendJsonString(std::string* out, absl::string_view text);
std::string JsonString(absl::string_view text);

// Appends a number: integers exactly, others with up to 9 significant digits. JSON has no NaN or
// infinity: those become null.
void AppendJsonNumber(std::string* out, double value);
// A timestamp or duration in microseconds, with nanosecond resolution (3 decimals).
void AppendJsonMicros(std::string* out, double micros);

// Writes {"traceEvents": [<every list joined>], "displayTimeUnit": "ms", "otherData": <json>} to
// `path` through a temporary file renamed into place, so a reader never sees half a trace.
// `other_data_json` must be a JSON object ("{}" when there is nothing to say). Errors name the
// path.
absl::Status WriteTraceFile(const std::string& path, const std::vector<std::string>& event_lists,
                            const std::string& other_data_json);

}  // namespace gradflow::runtime::trace
