#include "runtime/train/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string_view>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "runtime/train/checkpoint_file_io.h"

namespace gradflow::runtime {
namespace {

// The format stores numbers in host order, which must be little-endian to match the spec.
static_assert(std::endian::native == std::endian::little,
              "checkpoint format is little-endian; add byte swapping for this host");

namespace fs = std::filesystem;
using checkpoint_io::CrcFileReader;
using checkpoint_io::CrcFileWriter;

constexpr char kMagic[4] = {'G', 'F', 'C', 'K'};
constexpr char kParameters[] = "parameters";
constexpr char kMomentum[] = "momentum";
constexpr char kBnState[] = "bn_state";
constexpr char kEpoch[] = "epoch";
constexpr char kIteration[] = "iteration";
constexpr char kPreviousLr[] = "previous_lr";
constexpr absl::string_view kBlobPrefix = "blob.";
// Far above any real name; bounds what a damaged length field can make the reader allocate.
constexpr uint32_t kMaxSectionName = 4096;
constexpr uint32_t kMaxSections = 1 << 16;
// magic + version + graph hash + section count, and the CRC trailer.
constexpr int64_t kHeaderBytes = 4 + 4 + 8 + 4;
constexpr int64_t kTrailerBytes = 4;

constexpr absl::string_view kFilePrefix = "ckpt-";
constexpr absl::string_view kFileSuffix = ".gfck";
constexpr absl::string_view kTempPrefix = ".ckpt-";
constexpr absl::string_view kTempMarker = ".gfck.tmp-";

std::string CheckpointFileName(int64_t iteration) {
  return absl::StrCat(kFilePrefix, iteration, kFileSuffix);
}

// The iteration of a file named ckpt-<iteration>.gfck, or -1 for any other name.
int64_t IterationOfFileName(absl::string_view name) {
  if (!absl::ConsumePrefix(&name, kFilePrefix) || !absl::ConsumeSuffix(&name, kFileSuffix)) {
    return -1;
  }
  if (name.empty() ||
      !std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return -1;
  }
  int64_t iteration = 0;
  return absl::SimpleAtoi(name, &iteration) ? iteration : -1;
}

bool IsTempFileName(absl::string_view name) {
  return absl::StartsWith(name, kTempPrefix) && absl::StrContains(name, kTempMarker);
}

constexpr uint64_t kFnvOffsetBasis = 0xcbf29ce484222325ull;

uint64_t Fnv1a(uint64_t hash, std::span<const uint8_t> bytes) {
  for (uint8_t byte : bytes) {
    hash ^= byte;
    hash *= 0x100000001b3ull;  // the 64-bit FNV prime
  }
  return hash;
}

// ---- Writing ----

template <typename T>
absl::Status WritePod(CrcFileWriter& writer, T value) {
  return writer.Write(&value, sizeof(value));
}

absl::Status WriteSection(CrcFileWriter& writer, std::string_view name, const void* payload,
                          uint64_t payload_bytes) {
  if (absl::Status s = WritePod(writer, static_cast<uint32_t>(name.size())); !s.ok()) return s;
  if (absl::Status s = writer.Write(name.data(), name.size()); !s.ok()) return s;
  if (absl::Status s = WritePod(writer, payload_bytes); !s.ok()) return s;
  return writer.Write(payload, payload_bytes);
}

absl::Status WriteFloats(CrcFileWriter& writer, std::string_view name,
                         std::span<const float> values) {
  return WriteSection(writer, name, values.data(), values.size_bytes());
}

absl::Status WriteBody(CrcFileWriter& writer, const CheckpointView& view) {
  const auto section_count = static_cast<uint32_t>(6 + view.blobs.size());
  if (absl::Status s = writer.Write(kMagic, sizeof(kMagic)); !s.ok()) return s;
  if (absl::Status s = WritePod(writer, kCheckpointFormatVersion); !s.ok()) return s;
  if (absl::Status s = WritePod(writer, view.graph_hash); !s.ok()) return s;
  if (absl::Status s = WritePod(writer, section_count); !s.ok()) return s;
  if (absl::Status s = WriteFloats(writer, kParameters, view.parameters); !s.ok()) return s;
  if (absl::Status s = WriteFloats(writer, kMomentum, view.momentum); !s.ok()) return s;
  if (absl::Status s = WriteFloats(writer, kBnState, view.bn_state); !s.ok()) return s;
  if (absl::Status s = WriteSection(writer, kEpoch, &view.epoch, 8); !s.ok()) return s;
  if (absl::Status s = WriteSection(writer, kIteration, &view.iteration, 8); !s.ok()) return s;
  if (absl::Status s = WriteSection(writer, kPreviousLr, &view.previous_lr, 8); !s.ok()) return s;
  for (const auto& [name, bytes] : view.blobs) {
    if (absl::Status s =
            WriteSection(writer, absl::StrCat(kBlobPrefix, name), bytes.data(), bytes.size());
        !s.ok()) {
      return s;
    }
  }
  // The trailer covers everything before it, so it is taken before being written.
  return WritePod(writer, writer.crc());
}

absl::Status CheckView(const std::string& dir, const CheckpointView& view,
                       const CheckpointWriteOptions& options) {
  const std::string where = absl::StrCat("checkpoint in '", dir, "': ");
  if (options.keep_last < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, "keep_last must be >= 1, got ", options.keep_last));
  }
  if (view.iteration < 0 || view.epoch < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, "epoch (", view.epoch, ") and iteration (", view.iteration, ") must be >= 0"));
  }
  if (view.momentum.size() != view.parameters.size()) {
    return absl::InvalidArgumentError(absl::StrCat(where, "momentum has ", view.momentum.size(),
                                                   " floats, parameters ", view.parameters.size(),
                                                   "; they share one layout"));
  }
  if (!std::isfinite(view.previous_lr) || view.previous_lr < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, "previous lr must be finite and >= 0, got ", view.previous_lr));
  }
  std::set<std::string, std::less<>> names;
  for (const auto& blob : view.blobs) {
    const std::string& name = blob.first;
    if (name.empty() || name.size() + kBlobPrefix.size() > kMaxSectionName) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "blob name '", name, "' must have 1 to ",
                       kMaxSectionName - kBlobPrefix.size(), " bytes"));
    }
    if (!names.insert(name).second) {
      return absl::InvalidArgumentError(absl::StrCat(where, "blob '", name, "' given twice"));
    }
  }
  return absl::OkStatus();
}

// Deletes checkpoints older than the one just written beyond `keep_last` (the new one counts),
// and temporary files crashed writers left. Never touches a higher-numbered checkpoint: it is
// not older, and deleting it would destroy work this run does not know about.
std::vector<std::string> Prune(const std::string& dir, int64_t written_iteration, int keep_last) {
  std::vector<std::string> warnings;
  std::error_code error;
  std::vector<std::pair<int64_t, fs::path>> older;
  bool removed_any = false;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    const std::string name = entry.path().filename().string();
    const int64_t iteration = IterationOfFileName(name);
    if (iteration > written_iteration) {
      warnings.push_back(absl::StrCat("checkpoint directory holds ", entry.path().string(),
                                      ", newer than the one just written (iteration ",
                                      written_iteration, "); left in place"));
    } else if (iteration >= 0 && iteration < written_iteration) {
      older.emplace_back(iteration, entry.path());
    } else if (IsTempFileName(name)) {
      std::error_code remove_error;
      if (fs::remove(entry.path(), remove_error)) {
        removed_any = true;
      } else if (remove_error) {
        warnings.push_back(absl::StrCat("could not delete the stale temporary file ",
                                        entry.path().string(), ": ", remove_error.message()));
      }
    }
  }
  if (error) {
    warnings.push_back(
        absl::StrCat("could not list '", dir, "' to delete old checkpoints: ", error.message()));
    return warnings;
  }
  std::sort(older.begin(), older.end(), [](const auto& a, const auto& b) { return a > b; });
  for (size_t i = static_cast<size_t>(keep_last - 1); i < older.size(); ++i) {
    std::error_code remove_error;
    if (fs::remove(older[i].second, remove_error)) {
      removed_any = true;
    } else if (remove_error) {
      warnings.push_back(absl::StrCat("could not delete the old checkpoint ",
                                      older[i].second.string(), ": ", remove_error.message()));
    }
  }
  if (removed_any) {
    if (absl::Status s = checkpoint_io::SyncDirectory(dir); !s.ok()) {
      warnings.push_back(std::string(s.message()));
    }
  }
  return warnings;
}

// ---- Reading ----

absl::Status Corrupt(const std::string& path, std::string_view what) {
  return absl::DataLossError(
      absl::StrCat("checkpoint '", path, "' is corrupt or truncated: ", std::string(what)));
}

template <typename T>
absl::StatusOr<T> ReadPod(CrcFileReader& reader) {
  T value;
  if (absl::Status s = reader.Read(&value, sizeof(value)); !s.ok()) return s;
  return value;
}

// Checks the trailer against the CRC of everything read so far.
absl::Status ReadAndCheckCrc(CrcFileReader& reader) {
  const uint32_t computed = reader.crc();
  absl::StatusOr<uint32_t> stored = ReadPod<uint32_t>(reader);
  if (!stored.ok()) return stored.status();
  if (*stored != computed) {
    return Corrupt(reader.path(),
                   absl::StrFormat("CRC-32 is 0x%08x, the file says 0x%08x", computed, *stored));
  }
  return absl::OkStatus();
}

absl::Status ReadFloats(CrcFileReader& reader, uint64_t payload_bytes, std::string_view name,
                        std::vector<float>& out) {
  if (payload_bytes % sizeof(float) != 0) {
    return Corrupt(reader.path(), absl::StrCat("section '", std::string(name), "' has ",
                                               payload_bytes, " bytes, not whole floats"));
  }
  out.resize(payload_bytes / sizeof(float));
  return reader.Read(out.data(), payload_bytes);
}

template <typename T>
absl::Status ReadScalar(CrcFileReader& reader, uint64_t payload_bytes, std::string_view name,
                        T& out) {
  if (payload_bytes != sizeof(T)) {
    return Corrupt(reader.path(), absl::StrCat("section '", std::string(name), "' has ",
                                               payload_bytes, " bytes, expected ", sizeof(T)));
  }
  return reader.Read(&out, sizeof(T));
}

absl::Status ReadSection(CrcFileReader& reader, Checkpoint& checkpoint,
                         std::set<std::string, std::less<>>& seen) {
  absl::StatusOr<uint32_t> name_size = ReadPod<uint32_t>(reader);
  if (!name_size.ok()) return name_size.status();
  if (*name_size == 0 || *name_size > kMaxSectionName) {
    return Corrupt(reader.path(), absl::StrCat("section name length ", *name_size));
  }
  std::string name(*name_size, '\0');
  if (absl::Status s = reader.Read(name.data(), name.size()); !s.ok()) return s;
  absl::StatusOr<uint64_t> payload_bytes = ReadPod<uint64_t>(reader);
  if (!payload_bytes.ok()) return payload_bytes.status();
  if (*payload_bytes > static_cast<uint64_t>(reader.remaining() - kTrailerBytes)) {
    return Corrupt(reader.path(), absl::StrCat("section '", name, "' claims ", *payload_bytes,
                                               " bytes, more than the file has left"));
  }
  if (!seen.insert(name).second) {
    return Corrupt(reader.path(), absl::StrCat("section '", name, "' appears twice"));
  }
  if (name == kParameters) return ReadFloats(reader, *payload_bytes, name, checkpoint.parameters);
  if (name == kMomentum) return ReadFloats(reader, *payload_bytes, name, checkpoint.momentum);
  if (name == kBnState) return ReadFloats(reader, *payload_bytes, name, checkpoint.bn_state);
  if (name == kEpoch) return ReadScalar(reader, *payload_bytes, name, checkpoint.epoch);
  if (name == kIteration) return ReadScalar(reader, *payload_bytes, name, checkpoint.iteration);
  if (name == kPreviousLr) {
    return ReadScalar(reader, *payload_bytes, name, checkpoint.previous_lr);
  }
  if (absl::StartsWith(name, kBlobPrefix) && name.size() > kBlobPrefix.size()) {
    std::vector<uint8_t>& blob = checkpoint.blobs[name.substr(kBlobPrefix.size())];
    blob.resize(*payload_bytes);
    return reader.Read(blob.data(), blob.size());
  }
  return Corrupt(reader.path(), absl::StrCat("unknown section '", name, "'"));
}

absl::Status ReadSections(CrcFileReader& reader, Checkpoint& checkpoint) {
  absl::StatusOr<uint64_t> graph_hash = ReadPod<uint64_t>(reader);
  if (!graph_hash.ok()) return graph_hash.status();
  checkpoint.graph_hash = *graph_hash;
  absl::StatusOr<uint32_t> count = ReadPod<uint32_t>(reader);
  if (!count.ok()) return count.status();
  if (*count > kMaxSections) {
    return Corrupt(reader.path(), absl::StrCat("section count ", *count));
  }
  std::set<std::string, std::less<>> seen;
  for (uint32_t i = 0; i < *count; ++i) {
    if (absl::Status s = ReadSection(reader, checkpoint, seen); !s.ok()) return s;
  }
  if (reader.remaining() != kTrailerBytes) {
    return Corrupt(reader.path(), absl::StrCat(reader.remaining() - kTrailerBytes,
                                               " bytes between the last section and the CRC"));
  }
  if (absl::Status s = ReadAndCheckCrc(reader); !s.ok()) return s;
  for (const char* required : {kParameters, kMomentum, kBnState, kEpoch, kIteration, kPreviousLr}) {
    if (!seen.contains(required)) {
      return Corrupt(reader.path(), absl::StrCat("section '", required, "' is missing"));
    }
  }
  if (checkpoint.iteration < 0 || checkpoint.epoch < 0) {
    return Corrupt(reader.path(), absl::StrCat("negative epoch (", checkpoint.epoch,
                                               ") or iteration (", checkpoint.iteration, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

uint64_t GraphHash(std::span<const uint8_t> graph_file_bytes) {
  return Fnv1a(kFnvOffsetBasis, graph_file_bytes);
}

absl::StatusOr<uint64_t> GraphFileHash(const std::string& graph_path) {
  std::ifstream file(graph_path, std::ios::binary);
  if (!file) {
    return absl::NotFoundError(absl::StrCat("cannot open graph file '", graph_path, "'"));
  }
  // In pieces: a graph with pretrained weights inside can be hundreds of megabytes.
  std::vector<char> chunk(size_t{1} << 20);
  uint64_t hash = kFnvOffsetBasis;
  while (file) {
    file.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    hash = Fnv1a(
        hash, {reinterpret_cast<const uint8_t*>(chunk.data()), static_cast<size_t>(file.gcount())});
  }
  if (file.bad()) {
    return absl::DataLossError(absl::StrCat("cannot read graph file '", graph_path, "'"));
  }
  return hash;
}

absl::StatusOr<WrittenCheckpoint> WriteCheckpoint(const std::string& dir,
                                                  const CheckpointView& view,
                                                  const CheckpointWriteOptions& options) {
  if (absl::Status s = CheckView(dir, view, options); !s.ok()) return s;
  std::error_code error;
  const bool created = fs::create_directories(dir, error);
  if (error) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create checkpoint directory '", dir, "': ", error.message()));
  }
  if (created) {
    // A new directory's own entry must be durable too, or a crash could lose the checkpoint
    // with it.
    fs::path absolute = fs::absolute(fs::path(dir), error).lexically_normal();
    if (absolute.filename().empty()) absolute = absolute.parent_path();  // "dir/" names dir
    if (error) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot resolve checkpoint directory '", dir, "': ", error.message()));
    }
    if (absl::Status s = checkpoint_io::SyncDirectory(absolute.parent_path().string()); !s.ok()) {
      return s;
    }
  }
  const std::string name = CheckpointFileName(view.iteration);
  const std::string final_path = (fs::path(dir) / name).string();
  // Hidden and with a suffix of its own, so that no reader ever takes it for a checkpoint.
  const std::string temp_path =
      (fs::path(dir) / absl::StrCat(".", name, ".tmp-", ::getpid())).string();

  absl::StatusOr<CrcFileWriter> writer = CrcFileWriter::Create(temp_path);
  if (!writer.ok()) return writer.status();
  writer->set_after_chunk(options.after_chunk);
  absl::Status written = WriteBody(*writer, view);
  if (written.ok()) written = writer->SyncAndClose();
  if (written.ok()) written = checkpoint_io::DurableRename(temp_path, final_path, dir);
  if (!written.ok()) {
    std::error_code ignored;
    fs::remove(temp_path, ignored);
    return absl::Status(written.code(), absl::StrCat("writing checkpoint '", final_path,
                                                     "' failed: ", written.message()));
  }
  return WrittenCheckpoint{.path = final_path,
                           .warnings = Prune(dir, view.iteration, options.keep_last)};
}

absl::StatusOr<Checkpoint> ReadCheckpoint(const std::string& path) {
  absl::StatusOr<CrcFileReader> reader = CrcFileReader::Open(path);
  if (!reader.ok()) return reader.status();
  if (reader->file_size() < kHeaderBytes + kTrailerBytes) {
    return Corrupt(path, absl::StrCat("the file has ", reader->file_size(),
                                      " bytes, fewer than an empty checkpoint"));
  }
  char magic[4];
  if (absl::Status s = reader->Read(magic, sizeof(magic)); !s.ok()) return s;
  if (std::memcmp(magic, kMagic, sizeof(kMagic)) != 0) {
    return Corrupt(path, absl::StrFormat("magic is %s, not \"GFCK\" (not a gradflow checkpoint)",
                                         absl::CHexEscape(std::string(magic, 4))));
  }
  Checkpoint checkpoint;
  absl::StatusOr<uint32_t> version = ReadPod<uint32_t>(*reader);
  if (!version.ok()) return version.status();
  checkpoint.format_version = *version;
  if (*version == 0) return Corrupt(path, "format version 0");
  if (*version > kCheckpointFormatVersion) {
    // The envelope (magic, version, CRC trailer) is the same in every version: tell a damaged
    // version field from a genuinely newer file before blaming the binary.
    if (absl::Status s = reader->Skip(reader->remaining() - kTrailerBytes); !s.ok()) return s;
    if (absl::Status s = ReadAndCheckCrc(*reader); !s.ok()) return s;
    return absl::FailedPreconditionError(absl::StrCat(
        "checkpoint '", path, "' has format version ", *version, "; this gradflow reads up to ",
        kCheckpointFormatVersion, ": resume with the newer gradflow that wrote it"));
  }
  if (absl::Status s = ReadSections(*reader, checkpoint); !s.ok()) return s;
  return checkpoint;
}

absl::Status CheckCompatible(const Checkpoint& checkpoint, const CheckpointExpectation& expected,
                             const std::string& path) {
  if (checkpoint.graph_hash != expected.graph_hash) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "checkpoint '%s' was written for another training graph (graph hash %016x, this graph "
        "%016x): resume with the graph file it was trained with",
        path, checkpoint.graph_hash, expected.graph_hash));
  }
  const auto check_count = [&path](const char* what, size_t have, int64_t want) {
    if (static_cast<int64_t>(have) == want) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat("checkpoint '", path, "' holds ", have, " ",
                                                      what, " floats, this run has ", want));
  };
  if (absl::Status s =
          check_count("parameter", checkpoint.parameters.size(), expected.parameter_count);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          check_count("momentum", checkpoint.momentum.size(), expected.parameter_count);
      !s.ok()) {
    return s;
  }
  return check_count("batch-norm state", checkpoint.bn_state.size(), expected.bn_state_count);
}

absl::StatusOr<Checkpoint> LoadCheckpoint(const std::string& path,
                                          const CheckpointExpectation& expected) {
  absl::StatusOr<Checkpoint> checkpoint = ReadCheckpoint(path);
  if (!checkpoint.ok()) return checkpoint.status();
  if (absl::Status s = CheckCompatible(*checkpoint, expected, path); !s.ok()) return s;
  return checkpoint;
}

absl::StatusOr<std::vector<std::string>> ListCheckpoints(const std::string& dir) {
  std::error_code error;
  if (!fs::exists(dir, error)) {
    if (error) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot access checkpoint directory '", dir, "': ", error.message()));
    }
    return std::vector<std::string>{};
  }
  std::vector<std::pair<int64_t, std::string>> found;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    const int64_t iteration = IterationOfFileName(entry.path().filename().string());
    if (iteration >= 0) found.emplace_back(iteration, entry.path().string());
  }
  if (error) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot list checkpoint directory '", dir, "': ", error.message()));
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a > b; });
  std::vector<std::string> paths;
  for (auto& [iteration, path] : found) paths.push_back(std::move(path));
  return paths;
}

absl::StatusOr<std::optional<std::string>> LatestCheckpoint(const std::string& dir) {
  absl::StatusOr<std::vector<std::string>> paths = ListCheckpoints(dir);
  if (!paths.ok()) return paths.status();
  std::string damage;
  for (const std::string& path : *paths) {
    absl::StatusOr<Checkpoint> checkpoint = ReadCheckpoint(path);
    if (checkpoint.ok()) return std::optional<std::string>(path);
    if (checkpoint.status().code() != absl::StatusCode::kDataLoss) return checkpoint.status();
    absl::StrAppend(&damage, "\n  ", checkpoint.status().message());
  }
  if (!damage.empty()) {
    return absl::DataLossError(absl::StrCat("no intact checkpoint in '", dir, "':", damage));
  }
  return std::optional<std::string>();
}

absl::StatusOr<ResumePoint> ResumeFromDirectory(const std::string& dir,
                                                const CheckpointExpectation& expected) {
  absl::StatusOr<std::vector<std::string>> paths = ListCheckpoints(dir);
  if (!paths.ok()) return paths.status();
  ResumePoint resume;
  std::vector<std::string> corrupt;
  std::string damage;
  for (const std::string& path : *paths) {
    absl::StatusOr<Checkpoint> checkpoint = ReadCheckpoint(path);
    if (!checkpoint.ok()) {
      if (checkpoint.status().code() != absl::StatusCode::kDataLoss) return checkpoint.status();
      corrupt.push_back(path);
      absl::StrAppend(&damage, "\n  ", checkpoint.status().message());
      resume.warnings.push_back(absl::StrCat(checkpoint.status().message(), "; moved aside to '",
                                             path, ".corrupt'; resuming from an older checkpoint"));
      continue;
    }
    if (absl::Status s = CheckCompatible(*checkpoint, expected, path); !s.ok()) return s;
    // Only now that an intact checkpoint will be used: moving files aside earlier would let a
    // failed resume turn into a silent fresh start on the next attempt.
    for (const std::string& bad : corrupt) {
      if (absl::Status s = checkpoint_io::DurableRename(bad, bad + ".corrupt", dir); !s.ok()) {
        return absl::Status(s.code(), absl::StrCat("cannot move the corrupt checkpoint '", bad,
                                                   "' aside: ", s.message()));
      }
    }
    resume.checkpoint = *std::move(checkpoint);
    resume.path = path;
    return resume;
  }
  if (!corrupt.empty()) {
    return absl::DataLossError(absl::StrCat("cannot resume from '", dir,
                                            "': every checkpoint there is corrupt:", damage,
                                            "\nmove them away to start from scratch"));
  }
  return resume;
}

}  // namespace gradflow::runtime
