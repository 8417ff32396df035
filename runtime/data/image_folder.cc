#include "runtime/data/image_folder.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "runtime/data/image_transform.h"
#include "runtime/data/jpeg_decoder.h"

namespace gradflow::runtime::data {
namespace {

namespace fs = std::filesystem;

// Larger files are not photographs; refusing them bounds the per-thread read buffer.
constexpr int64_t kMaxFileBytes = int64_t{256} << 20;

struct FolderListing {
  std::vector<std::string> folders;
  std::vector<std::string> files;
};

absl::StatusOr<FolderListing> ListFolder(const fs::path& folder) {
  FolderListing listing;
  std::error_code error;
  fs::directory_iterator it(folder, error);
  for (; !error && it != fs::directory_iterator(); it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    std::error_code kind_error;
    if (it->is_directory(kind_error)) {
      listing.folders.push_back(name);
    } else if (it->is_regular_file(kind_error)) {
      listing.files.push_back(name);
    }
  }
  if (error) {
    return absl::NotFoundError(
        absl::StrCat("imagefolder: cannot list ", folder.string(), " (", error.message(), ")"));
  }
  std::sort(listing.folders.begin(), listing.folders.end());
  std::sort(listing.files.begin(), listing.files.end());
  return listing;
}

bool IsJpegName(const std::string& name) {
  const size_t dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  std::string extension = name.substr(dot + 1);
  for (char& c : extension) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return extension == "jpg" || extension == "jpeg";
}

// Reads a whole file into `bytes`; errors are DataLoss because a file that vanished or lost its
// permissions after the scan is one bad example, not a reason to stop training.
absl::Status ReadWholeFile(const std::string& path, std::vector<uint8_t>* bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::DataLossError(absl::StrCat(path, ": cannot open (", std::strerror(errno), ")"));
  }
  struct stat info;
  if (::fstat(fd, &info) != 0 || info.st_size > kMaxFileBytes) {
    ::close(fd);
    return absl::DataLossError(
        absl::StrCat(path, ": cannot read or larger than ", kMaxFileBytes, " bytes"));
  }
  bytes->resize(static_cast<size_t>(info.st_size));
  size_t done = 0;
  while (done < bytes->size()) {
    const ssize_t got = ::read(fd, bytes->data() + done, bytes->size() - done);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      const std::string reason = got < 0 ? std::strerror(errno) : "file shrank while reading";
      ::close(fd);
      return absl::DataLossError(absl::StrCat(path, ": read failed (", reason, ")"));
    }
    done += static_cast<size_t>(got);
  }
  ::close(fd);
  return absl::OkStatus();
}

// Per-thread decoder state: decode threads live for the whole run, so these are allocated once
// per thread and grow to the largest image seen.
struct DecodeScratch {
  JpegDecoder decoder;
  std::vector<uint8_t> file;
  RgbImage image;
};

DecodeScratch& ThreadScratch() {
  thread_local DecodeScratch scratch;
  return scratch;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ImageFolderDataset>> ImageFolderDataset::Open(
    const std::string& root, Options options) {
  if (options.crop_size <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("imagefolder:", root, ": crop size ", options.crop_size, " must be > 0"));
  }
  std::unique_ptr<ImageFolderDataset> dataset(new ImageFolderDataset());
  dataset->root_ = root;
  dataset->crop_size_ = options.crop_size;
  dataset->report_ = options.report ? std::move(options.report) : StderrReporter();

  const fs::path train_folder = fs::path(root) / "train";
  const fs::path val_folder = fs::path(root) / "val";
  absl::StatusOr<FolderListing> train_listing = ListFolder(train_folder);
  if (!train_listing.ok()) return train_listing.status();
  if (train_listing->folders.empty()) {
    return absl::NotFoundError(
        absl::StrCat("imagefolder: ", train_folder.string(), " holds no class folders"));
  }
  absl::StatusOr<FolderListing> val_listing = ListFolder(val_folder);
  if (!val_listing.ok()) return val_listing.status();
  for (const std::string& name : val_listing->folders) {
    if (!std::binary_search(train_listing->folders.begin(), train_listing->folders.end(), name)) {
      return absl::InvalidArgumentError(absl::StrCat("imagefolder: ", (val_folder / name).string(),
                                                     " is not a class of ", train_folder.string(),
                                                     " (val must use the train classes)"));
    }
  }
  for (const std::string& name : train_listing->folders) {
    if (!std::binary_search(val_listing->folders.begin(), val_listing->folders.end(), name)) {
      return absl::InvalidArgumentError(absl::StrCat("imagefolder: ", (val_folder / name).string(),
                                                     " is missing (class of ",
                                                     train_folder.string(), ")"));
    }
  }
  dataset->class_names_ = train_listing->folders;

  for (Split split : {Split::kTrain, Split::kEval}) {
    SplitIndex& index = split == Split::kTrain ? dataset->train_ : dataset->eval_;
    index.folder = (split == Split::kTrain ? train_folder : val_folder).string();
    int64_t ignored = 0;
    std::string first_ignored;
    for (size_t label = 0; label < dataset->class_names_.size(); ++label) {
      const std::string& class_name = dataset->class_names_[label];
      absl::StatusOr<FolderListing> files = ListFolder(fs::path(index.folder) / class_name);
      if (!files.ok()) return files.status();
      for (const std::string& file : files->files) {
        if (!IsJpegName(file)) {
          if (ignored++ == 0)
            first_ignored = absl::StrCat(index.folder, "/", class_name, "/", file);
          continue;
        }
        absl::StrAppend(&index.names, class_name, "/", file);
        index.name_ends.push_back(index.names.size());
        index.labels.push_back(static_cast<int32_t>(label));
      }
    }
    if (index.labels.empty()) {
      return absl::NotFoundError(
          absl::StrCat("imagefolder: no .jpg/.jpeg files under ", index.folder, "/<class>/"));
    }
    if (ignored > 0) {
      dataset->Report(absl::StrCat("imagefolder: ignoring ", ignored, " files under ", index.folder,
                                   " that are not .jpg/.jpeg (first: ", first_ignored, ")"));
    }
    index.known_bad = std::make_unique<std::atomic<uint8_t>[]>(index.labels.size());
  }
  return dataset;
}

std::string ImageFolderDataset::Describe() const { return absl::StrCat("imagefolder:", root_); }

int64_t ImageFolderDataset::NumExamples(Split split) const {
  return static_cast<int64_t>(Index(split).labels.size());
}

std::string ImageFolderDataset::ExamplePath(Split split, int64_t index) const {
  const SplitIndex& split_index = Index(split);
  const uint64_t begin = index == 0 ? 0 : split_index.name_ends[index - 1];
  return absl::StrCat(split_index.folder, "/",
                      split_index.names.substr(begin, split_index.name_ends[index] - begin));
}

void ImageFolderDataset::Report(const std::string& message) const {
  std::lock_guard<std::mutex> lock(report_mutex_);
  report_(message);
}

absl::Status ImageFolderDataset::LoadExample(Split split, int64_t index, Rng& rng, float* out_chw,
                                             int32_t* label) const {
  const SplitIndex& split_index = Index(split);
  if (index < 0 || index >= NumExamples(split)) {
    return absl::OutOfRangeError(absl::StrCat(Describe(), ": ", SplitName(split), " index ", index,
                                              " outside [0, ", NumExamples(split), ")"));
  }
  if (split_index.known_bad[index].load(std::memory_order_relaxed) != 0) {
    return absl::DataLossError(
        absl::StrCat(ExamplePath(split, index), ": unreadable (reported before)"));
  }
  absl::Status status = Decode(split, index, rng, out_chw);
  if (!status.ok()) {
    if (split_index.known_bad[index].exchange(1) == 0) {
      corrupt_files_.fetch_add(1);
      Report(absl::StrCat("imagefolder: skipping ", status.message()));
    }
    return status;
  }
  *label = split_index.labels[index];
  return absl::OkStatus();
}

absl::Status ImageFolderDataset::Decode(Split split, int64_t index, Rng& rng,
                                        float* out_chw) const {
  const std::string path = ExamplePath(split, index);
  DecodeScratch& scratch = ThreadScratch();
  absl::Status status = ReadWholeFile(path, &scratch.file);
  if (!status.ok()) return status;
  JpegHeader header;
  status = scratch.decoder.ReadHeader(scratch.file.data(), scratch.file.size(), &header);
  if (!status.ok()) return absl::DataLossError(absl::StrCat(path, ": ", status.message()));

  CropRegion region;
  bool flip = false;
  if (split == Split::kTrain) {
    region = RandomResizedCropRegion(header.width, header.height, rng);
    flip = rng.Bernoulli(0.5);
  } else {
    region = CenterCropRegion(header.width, header.height, crop_size_);
  }
  const JpegScale scale = PickScale(region.width, region.height, crop_size_);
  status = scratch.decoder.Decode(scratch.file.data(), scratch.file.size(), header, scale.num,
                                  scale.denom, &scratch.image);
  if (!status.ok()) return absl::DataLossError(absl::StrCat(path, ": ", status.message()));

  const double sx = static_cast<double>(scratch.image.width) / header.width;
  const double sy = static_cast<double>(scratch.image.height) / header.height;
  const CropRegion scaled{region.x * sx, region.y * sy, region.width * sx, region.height * sy};
  ResampleToChw(scratch.image.pixels.data(), scratch.image.width, scratch.image.height,
                int64_t{scratch.image.width} * 3, scaled, crop_size_, flip, kImageNetNormalization,
                out_chw);
  return absl::OkStatus();
}

}  // namespace gradflow::runtime::data
