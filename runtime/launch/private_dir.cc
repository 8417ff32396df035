#include "runtime/launch/private_dir.h"

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"

namespace gradflow::runtime::launch {

absl::StatusOr<std::string> MakePrivateDirectory(const std::string& prefix) {
  if (prefix.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("private directory prefix '", prefix, "' must not contain '/'"));
  }
  const char* tmpdir = std::getenv("TMPDIR");
  const std::string parent = tmpdir != nullptr && tmpdir[0] != '\0' ? tmpdir : "/tmp";
  const std::string pattern = absl::StrCat(parent, "/", prefix, "XXXXXX");
  std::vector<char> path(pattern.begin(), pattern.end());
  path.push_back('\0');
  if (::mkdtemp(path.data()) == nullptr) {
    return absl::InternalError(
        absl::StrCat("cannot create a private directory ", pattern, ": ", std::strerror(errno)));
  }
  return std::string(path.data());
}

absl::Status RemoveTree(const std::string& path) {
  if (path.empty() || std::filesystem::path(path).lexically_normal() == "/") {
    return absl::InvalidArgumentError(absl::StrCat("refusing to remove the tree '", path, "'"));
  }
  std::error_code error;
  std::filesystem::remove_all(path, error);
  if (error) {
    return absl::InternalError(absl::StrCat("cannot remove ", path, ": ", error.message()));
  }
  return absl::OkStatus();
}

}  // namespace gradflow::runtime::launch
