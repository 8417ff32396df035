#include "runtime/dist/store.h"

#include <filesystem>
#include <map>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gloo/rendezvous/file_store.h"
#include "gloo/rendezvous/prefix_store.h"
#include "gloo/rendezvous/redis_store.h"

namespace gradflow::runtime::dist {
namespace {

// Gloo's FileStore keeps its existence check protected; the wrapper needs it to wait with its own,
// precise deadline (FileStore's wait counts whole seconds).
class CheckableFileStore : public gloo::rendezvous::FileStore {
 public:
  using FileStore::check;
  using FileStore::FileStore;
};

// Gloo puts its source location in front of its messages; keep the message only.
std::string GlooMessage(const std::exception& e) {
  std::string text = e.what();
  if (!text.empty() && text.front() == '[') {
    const size_t end = text.find("] ");
    if (end != std::string::npos) text.erase(0, end + 2);
  }
  return text;
}

bool ValidJobId(const std::string& job_id) {
  if (job_id.empty() || job_id == "." || job_id == "..") return false;
  for (char c : job_id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

constexpr auto kPollInterval = std::chrono::milliseconds(10);

}  // namespace

std::string DurationText(std::chrono::milliseconds duration) {
  const int64_t ms = duration.count();
  if (ms < 1000) return absl::StrCat(ms, " ms");
  if (ms % 1000 == 0) return absl::StrCat(ms / 1000, " s");
  return absl::StrCat(static_cast<double>(ms) / 1000.0, " s");
}

Store::Store(RendezvousSpec spec, std::string job_id, std::chrono::milliseconds timeout,
             std::unique_ptr<gloo::rendezvous::Store> base, CheckFn check)
    : spec_(std::move(spec)),
      job_id_(std::move(job_id)),
      timeout_(timeout),
      base_(std::move(base)),
      scoped_(std::make_unique<gloo::rendezvous::PrefixStore>(job_id_, *base_)),
      check_(std::move(check)) {}

Store::~Store() = default;

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const RendezvousSpec& spec,
                                                   const std::string& job_id,
                                                   std::chrono::milliseconds timeout) {
  if (!ValidJobId(job_id)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "job id '", job_id, "' is not usable (letters, digits, '.', '_' and '-' only)"));
  }
  if (timeout <= std::chrono::milliseconds::zero()) {
    return absl::InvalidArgumentError(
        absl::StrCat("rendezvous timeout must be positive, got ", timeout.count(), " ms"));
  }
  std::unique_ptr<gloo::rendezvous::Store> base;
  CheckFn check;
  try {
    if (spec.kind == RendezvousSpec::Kind::kFile) {
      const std::filesystem::path dir = std::filesystem::path(spec.path) / job_id;
      std::error_code error;
      std::filesystem::create_directories(dir, error);
      if (error) {
        return absl::UnavailableError(absl::StrCat("cannot create the rendezvous directory '",
                                                   dir.string(), "': ", error.message()));
      }
      auto file_store = std::make_unique<CheckableFileStore>(dir.string());
      check = [raw = file_store.get()](const std::vector<std::string>& keys) {
        return raw->check(keys);
      };
      base = std::move(file_store);
    } else {
      auto redis_store = std::make_unique<gloo::rendezvous::RedisStore>(spec.host, spec.port);
      check = [raw = redis_store.get()](const std::vector<std::string>& keys) {
        return raw->check(keys);
      };
      base = std::move(redis_store);
    }
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot open the rendezvous ", spec.ToString(), ": ", GlooMessage(e)));
  }
  return std::unique_ptr<Store>(
      new Store(spec, job_id, timeout, std::move(base), std::move(check)));
}

absl::StatusOr<std::unique_ptr<Store>> Store::Reopen() const {
  return Open(spec_, job_id_, timeout_);
}

std::string Store::Describe() const {
  return absl::StrCat(spec_.ToString(), " (job '", job_id_, "')");
}

std::string Store::ScopedKey(const std::string& key) const {
  return absl::StrCat(job_id_, "/", key);  // what gloo::rendezvous::PrefixStore writes
}

gloo::rendezvous::Store& Store::gloo() { return *scoped_; }

absl::Status Store::Set(const std::string& key, const std::string& value) {
  std::lock_guard<std::mutex> lock(mutex_);
  try {
    if (check_({ScopedKey(key)})) {
      return absl::AlreadyExistsError(
          absl::StrCat("key '", key, "' is already set in rendezvous ", Describe(),
                       " (keys are written once: use a fresh job id or directory per run)"));
    }
    scoped_->set(key, std::vector<char>(value.begin(), value.end()));
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("cannot set key '", key, "' in rendezvous ",
                                               Describe(), ": ", GlooMessage(e)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Store::Get(const std::string& key) { return Get(key, timeout_); }

absl::StatusOr<std::string> Store::Get(const std::string& key, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    absl::StatusOr<bool> present = Check({key});
    if (!present.ok()) return present.status();
    if (*present) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat("timed out after ", DurationText(timeout),
                                                      " waiting for key '", key, "' in rendezvous ",
                                                      Describe()));
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  try {
    std::vector<char> value = scoped_->get(key);
    return std::string(value.begin(), value.end());
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("cannot read key '", key, "' from rendezvous ",
                                               Describe(), ": ", GlooMessage(e)));
  }
}

absl::StatusOr<bool> Store::Check(const std::vector<std::string>& keys) {
  std::vector<std::string> scoped;
  scoped.reserve(keys.size());
  for (const std::string& key : keys) scoped.push_back(ScopedKey(key));
  std::lock_guard<std::mutex> lock(mutex_);
  try {
    return check_(scoped);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("cannot check keys ", absl::StrJoin(keys, ", "),
                                               " in rendezvous ", Describe(), ": ",
                                               GlooMessage(e)));
  }
}

namespace {

// "a=1 b=2" -> {a: 1, b: 2}, keeping the order items first appear in.
std::vector<std::pair<std::string, std::string>> FingerprintItems(const std::string& fingerprint) {
  std::vector<std::pair<std::string, std::string>> items;
  for (absl::string_view token : absl::StrSplit(fingerprint, ' ', absl::SkipEmpty())) {
    const size_t eq = token.find('=');
    if (eq == absl::string_view::npos) {
      items.emplace_back(std::string(token), "");
    } else {
      items.emplace_back(std::string(token.substr(0, eq)), std::string(token.substr(eq + 1)));
    }
  }
  return items;
}

std::string ItemText(const std::string& key, const std::string& value) {
  return value.empty() ? key : absl::StrCat(key, "=", value);
}

// Every item of `other` that is not the same in `reference`, in words.
std::string DescribeDifferences(int reference_rank, const std::string& reference, int other_rank,
                                const std::string& other) {
  const auto reference_items = FingerprintItems(reference);
  const auto other_items = FingerprintItems(other);
  std::map<std::string, std::string> reference_map(reference_items.begin(), reference_items.end());
  std::map<std::string, std::string> other_map(other_items.begin(), other_items.end());
  std::vector<std::string> differences;
  for (const auto& [key, value] : other_items) {
    auto it = reference_map.find(key);
    if (it == reference_map.end()) {
      differences.push_back(absl::StrCat("node ", other_rank, " has ", ItemText(key, value),
                                         ", node ", reference_rank, " has no ", key));
    } else if (it->second != value) {
      differences.push_back(absl::StrCat("node ", other_rank, "'s ", ItemText(key, value),
                                         " differs from node ", reference_rank, "'s ",
                                         ItemText(key, it->second)));
    }
  }
  for (const auto& [key, value] : reference_items) {
    if (other_map.count(key) == 0) {
      differences.push_back(absl::StrCat("node ", reference_rank, " has ", ItemText(key, value),
                                         ", node ", other_rank, " has no ", key));
    }
  }
  if (differences.empty()) {  // same items, different order or spacing
    differences.push_back(absl::StrCat("node ", other_rank, " has '", other, "', node ",
                                       reference_rank, " has '", reference, "'"));
  }
  return absl::StrJoin(differences, "; ");
}

}  // namespace

absl::Status CheckSameEverywhere(Store& store, int rank, int size, const std::string& what,
                                 const std::string& fingerprint) {
  if (size < 1 || rank < 0 || rank >= size) {
    return absl::InvalidArgumentError(
        absl::StrCat("rank ", rank, " is outside a job of ", size, " nodes"));
  }
  auto key_of = [&what](int r) { return absl::StrCat("same/", what, "/", r); };
  if (absl::Status status = store.Set(key_of(rank), fingerprint); !status.ok()) return status;
  std::vector<std::string> fingerprints(size);
  for (int r = 0; r < size; ++r) {
    if (r == rank) {
      fingerprints[r] = fingerprint;
      continue;
    }
    absl::StatusOr<std::string> other = store.Get(key_of(r));
    if (!other.ok()) {
      return absl::Status(
          other.status().code(),
          absl::StrCat("checking that every node runs the same ", what, ": node ", r,
                       " did not publish its ", what, " (", other.status().message(), ")"));
    }
    fingerprints[r] = *std::move(other);
  }
  for (int r = 1; r < size; ++r) {
    if (fingerprints[r] != fingerprints[0]) {
      return absl::FailedPreconditionError(
          absl::StrCat("nodes disagree on their ", what, ": ",
                       DescribeDifferences(0, fingerprints[0], r, fingerprints[r])));
    }
  }
  return absl::OkStatus();
}

}  // namespace gradflow::runtime::dist
