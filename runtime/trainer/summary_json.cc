#include "runtime/trainer/summary_json.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace gradflow::runtime {

absl::Status WriteSummaryJson(const std::string& path, const TrainerConfig& config,
                              const TrainSummary& summary) {
  const CommunicationStats& c = summary.communication;
  std::string json = absl::StrFormat(
      "{\n  \"nodes\": %d,\n  \"rank\": %d,\n  \"batch_per_node\": %d,\n  \"iterations\": %d,\n"
      "  \"seconds\": %.6f,\n  \"images_per_second_per_node\": %.6f,\n"
      "  \"buckets\": %d,\n  \"gradient_bytes\": %d,\n  \"allreduces\": %d,\n"
      "  \"allreduces_started_during_backward\": %d,\n  \"communication_seconds\": %.6f,\n"
      "  \"exposed_communication_seconds\": %.6f,\n  \"compute_seconds\": %.6f,\n"
      "  \"data_wait_seconds\": %.6f,\n  \"final_loss\": %.6f,\n  \"eval_top1\": %.6f,\n"
      "  \"parameter_checksum\": \"%016x\",\n",
      summary.nodes, summary.rank, config.batch, summary.iterations, summary.seconds,
      summary.images_per_second, summary.buckets, summary.gradient_bytes, c.allreduces,
      c.allreduces_started_during_backward, c.communication_seconds, c.exposed_seconds,
      std::max(0.0, summary.seconds - c.exposed_seconds), summary.data_wait_seconds,
      summary.final_loss, summary.eval.top1, summary.parameter_checksum);
  absl::StrAppend(&json, "  \"iteration_seconds\": [",
                  absl::StrJoin(summary.iteration_seconds, ", ",
                                [](std::string* out, double v) {
                                  absl::StrAppend(out, absl::StrFormat("%.6f", v));
                                }),
                  "]\n}\n");
  const std::string temporary = absl::StrCat(path, ".tmp");
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) {
      return absl::PermissionDeniedError(
          absl::StrCat("--summary-json ", path, ": cannot write ", temporary, ": ", std::strerror(errno)));
    }
    out << json;
    out.flush();
    if (!out) return absl::DataLossError(absl::StrCat("--summary-json ", path, ": write failed"));
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("--summary-json ", path, ": cannot rename into place: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace gradflow::runtime
