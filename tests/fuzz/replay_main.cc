// Runs LLVMFuzzerTestOneInput over files without libFuzzer, so that the fuzz target's checks run
// in every build (gcc included) as a regular test:
//   graph_loader_fuzz_replay [--variants] [--expect-loaded N] FILE_OR_DIR...
// --variants also feeds the truncations and single-byte corruptions of every file up to
// kMaxVariantBytes, which reach the loader's error paths deterministically. --expect-loaded fails
// the run unless at least N of the original files loaded, so the round-trip checks cannot be
// skipped silently.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/serialize.h"
#include "ops/registry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

namespace fs = std::filesystem;

// Variants grow with the square of the size (4 per byte, each parsed in full): 16 KiB keeps a
// replay of the small seed graphs to about a second; larger seeds are replayed whole only.
constexpr size_t kMaxVariantBytes = 16 * 1024;

struct Options {
  bool variants = false;
  long expect_loaded = 0;
  std::vector<fs::path> roots;
};

bool ParseArgs(int argc, char** argv, Options& options) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--variants") {
      options.variants = true;
    } else if (arg == "--expect-loaded" && i + 1 < argc) {
      char* end = nullptr;
      options.expect_loaded = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || options.expect_loaded < 0) {
        std::fprintf(stderr, "--expect-loaded needs a count, got '%s'\n", argv[i]);
        return false;
      }
    } else if (arg.starts_with("--")) {
      std::fprintf(stderr, "unknown flag '%s'\n", argv[i]);
      return false;
    } else {
      options.roots.emplace_back(arg);
    }
  }
  if (options.roots.empty()) {
    std::fprintf(stderr, "usage: %s [--variants] [--expect-loaded N] FILE_OR_DIR...\n", argv[0]);
    return false;
  }
  return true;
}

// Regular files under each root, sorted so that a failing run is reproducible.
bool CollectFiles(const std::vector<fs::path>& roots, std::vector<fs::path>& files) {
  for (const fs::path& root : roots) {
    std::error_code error;
    if (fs::is_regular_file(root, error)) {
      files.push_back(root);
      continue;
    }
    if (!fs::is_directory(root, error)) {
      std::fprintf(stderr, "%s: not a file or directory\n", root.c_str());
      return false;
    }
    for (const auto& entry : fs::recursive_directory_iterator(root, error)) {
      if (entry.is_regular_file()) files.push_back(entry.path());
    }
    if (error) {
      std::fprintf(stderr, "%s: %s\n", root.c_str(), error.message().c_str());
      return false;
    }
  }
  std::sort(files.begin(), files.end());
  return true;
}

bool ReadFile(const fs::path& path, std::vector<uint8_t>& bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

// Every prefix, and every byte XORed with a low bit, a high bit and all bits: enough to hit
// each offset, length and identifier check of the format, and cheap for seeds of a few KB.
long FeedVariants(const std::vector<uint8_t>& bytes) {
  long fed = 0;
  for (size_t length = 0; length < bytes.size(); ++length) {
    std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(length));
    LLVMFuzzerTestOneInput(prefix.data(), prefix.size());
    ++fed;
  }
  std::vector<uint8_t> corrupted = bytes;
  for (size_t offset = 0; offset < bytes.size(); ++offset) {
    for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
      corrupted[offset] = bytes[offset] ^ mask;
      LLVMFuzzerTestOneInput(corrupted.data(), corrupted.size());
      ++fed;
    }
    corrupted[offset] = bytes[offset];
  }
  return fed;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!ParseArgs(argc, argv, options)) return 2;
  std::vector<fs::path> files;
  if (!CollectFiles(options.roots, files)) return 1;
  if (files.empty()) {
    std::fprintf(stderr, "no input files found: a replay of nothing tests nothing\n");
    return 1;
  }

  long inputs = 0;
  long loaded = 0;
  for (const fs::path& file : files) {
    std::vector<uint8_t> bytes;
    if (!ReadFile(file, bytes)) {
      std::fprintf(stderr, "%s: cannot read\n", file.c_str());
      return 1;
    }
    LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
    ++inputs;
    const bool loads =
        gradflow::graph::ParseGraph(bytes, file.string(), gradflow::ops::StandardOps()).ok();
    if (loads) ++loaded;
    const long variants =
        options.variants && bytes.size() <= kMaxVariantBytes ? FeedVariants(bytes) : 0;
    inputs += variants;
    std::printf("%s: %zu bytes, %s, %ld variants\n", file.c_str(), bytes.size(),
                loads ? "loads" : "rejected", variants);
  }
  std::printf("replayed %ld inputs from %zu files; %ld files load as graphs\n", inputs,
              files.size(), loaded);
  if (loaded < options.expect_loaded) {
    std::fprintf(stderr, "expected at least %ld files to load as graphs, %ld did\n",
                 options.expect_loaded, loaded);
    return 1;
  }
  return 0;
}
