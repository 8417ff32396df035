// Training checkpoints: everything needed to resume a run bit-exactly, written so that a crash
// at any moment leaves the previous checkpoint intact and never a half-written one in its place.
//
// File format, version 1 (all integers little-endian; floats as their IEEE-754 bits):
//   magic           4 bytes  "GFCK"
//   format_version  u32      1; a reader refuses a newer version
//   graph_hash      u64      64-bit FNV-1a of the training graph file's bytes (GraphFileHash)
//   section_count   u32
//   sections        each: u32 name length, name (UTF-8), u64 payload length, payload
//   crc32           u32      zlib CRC-32 of every byte before it
// Sections, each exactly once:
//   "parameters", "momentum", "bn_state"   f32 arrays (the flat buffers, bit for bit)
//   "epoch", "iteration"                     i64
//   "previous_lr"                            f64 (the optimizer's lr of the last step; 0 = none)
//   "blob.<name>"                            opaque bytes from the caller (RNG states, the data
//                                            loader's position), any number, names unique
// A reader refuses unknown section names: a writer of the same version writes only these, so
// an unknown name means damage the CRC could not see or a file from another program.
//
// Files are named ckpt-<iteration>.gfck inside a checkpoint directory, which has one writer
// (node rank 0). WriteCheckpoint writes a hidden temporary file in the same directory, fsyncs
// it, renames it into place and fsyncs the directory; only then does it delete checkpoints
// beyond the newest `keep_last`, and temporary files that crashed writers left behind.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace gradflow::runtime {

inline constexpr uint32_t kCheckpointFormatVersion = 1;

// 64-bit FNV-1a: ties a checkpoint to the exact graph file it trained (no SHA-256 at hand, and
// this guards against mix-ups, not against an adversary).
uint64_t GraphHash(std::span<const uint8_t> graph_file_bytes);
// GraphHash of a file's bytes; errors name the file.
absl::StatusOr<uint64_t> GraphFileHash(const std::string& graph_path);

// What to write, by reference: the large buffers are not copied.
struct CheckpointView {
  uint64_t graph_hash = 0;
  std::span<const float> parameters;
  std::span<const float> momentum;  // same layout (and size) as parameters
  std::span<const float> bn_state;  // running means and variances, flat
  int64_t epoch = 0;                // the epoch the next iteration belongs to
  int64_t iteration = 0;            // iterations completed = the first one to run on resume
  double previous_lr = 0;
  std::vector<std::pair<std::string, std::span<const uint8_t>>> blobs;
};

// A checkpoint read back, owning its data.
struct Checkpoint {
  uint32_t format_version = 0;
  uint64_t graph_hash = 0;
  std::vector<float> parameters;
  std::vector<float> momentum;
  std::vector<float> bn_state;
  int64_t epoch = 0;
  int64_t iteration = 0;
  double previous_lr = 0;
  std::map<std::string, std::vector<uint8_t>> blobs;
};

struct CheckpointWriteOptions {
  int keep_last = 3;  // >= 1
  // Called after each chunk reaches the temporary file with the bytes written so far; an error
  // aborts the write (the temporary file is removed, existing checkpoints are untouched). Tests
  // use it to fail or to kill the writer midway.
  std::function<absl::Status(int64_t bytes_written)> after_chunk;
};

struct WrittenCheckpoint {
  std::string path;
  // Clean-up that failed after the checkpoint was durable (an old file not deleted): the
  // checkpoint is good, the caller should print these.
  std::vector<std::string> warnings;
};

// Writes ckpt-<view.iteration>.gfck into `dir` (created if missing) as described above.
// Errors name the file and the system call that failed.
absl::StatusOr<WrittenCheckpoint> WriteCheckpoint(const std::string& dir,
                                                  const CheckpointView& view,
                                                  const CheckpointWriteOptions& options = {});

// Reads and checks the integrity of one file: size, CRC, magic, format version, sections.
// DataLoss for a truncated or corrupt file, FailedPrecondition for a newer format version;
// every message names the file.
absl::StatusOr<Checkpoint> ReadCheckpoint(const std::string& path);

// What the current run needs from a checkpoint.
struct CheckpointExpectation {
  uint64_t graph_hash = 0;
  int64_t parameter_count = 0;  // floats in the parameter (and momentum) buffer
  int64_t bn_state_count = 0;
};

// FailedPrecondition naming `path` when the checkpoint belongs to another graph or its buffers
// have other sizes.
absl::Status CheckCompatible(const Checkpoint& checkpoint, const CheckpointExpectation& expected,
                             const std::string& path);

// ReadCheckpoint, then CheckCompatible.
absl::StatusOr<Checkpoint> LoadCheckpoint(const std::string& path,
                                          const CheckpointExpectation& expected);

// The checkpoint files of `dir` (ckpt-<iteration>.gfck), newest (highest iteration) first.
// A missing directory has none.
absl::StatusOr<std::vector<std::string>> ListCheckpoints(const std::string& dir);

// The path of the newest checkpoint in `dir` that reads back intact (CRC, magic, sections), or
// nullopt when the directory has no checkpoint file. Corrupt newer files are skipped; DataLoss
// listing them when no file is intact, FailedPrecondition when the newest intact-looking one has
// a newer format version. Reads whole files: a resume-time operation.
absl::StatusOr<std::optional<std::string>> LatestCheckpoint(const std::string& dir);

struct ResumePoint {
  std::optional<Checkpoint> checkpoint;  // nullopt: the directory has no checkpoint yet
  std::string path;
  std::vector<std::string> warnings;  // to print: corrupt checkpoints skipped and moved aside
};

// `--resume DIR`. Takes the newest checkpoint; when it is corrupt (truncated, CRC, magic), falls
// back to the next newest intact one with a warning, and renames each corrupt file to
// <name>.corrupt. Why fall back rather than refuse: the writer is atomic, so a corrupt file is
// storage damage, not a crash mid-write, and refusing would stop an unattended (requeued) job
// that an older checkpoint can continue, losing at most the iterations between the two. The
// corrupt file is moved aside, not deleted, so it stays for inspection and leaves the rotation:
// left in place, its higher iteration number would make keep-last pruning delete the new
// checkpoints of the resumed run instead of it.
// Refuses (error naming the file) when every checkpoint is corrupt, when the newest intact one
// has a newer format version, or belongs to another graph or buffer sizes: those mean the
// wrong directory or binary, which falling back would hide.
absl::StatusOr<ResumePoint> ResumeFromDirectory(const std::string& dir,
                                                const CheckpointExpectation& expected);

}  // namespace gradflow::runtime
