#include "runtime/dist/gloo_failure.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/dist/store.h"

namespace gradflow::runtime::dist {
namespace {

// Every "[host]:port" or "[host]:port$seq" token in `text`.
std::vector<std::string> AddressTokens(const std::string& text) {
  std::vector<std::string> tokens;
  size_t open = text.find('[');
  while (open != std::string::npos) {
    const size_t close = text.find(']', open);
    if (close == std::string::npos) break;
    size_t end = close + 1;
    if (end < text.size() && text[end] == ':') {
      ++end;
      while (end < text.size() && absl::ascii_isdigit(static_cast<unsigned char>(text[end]))) ++end;
      if (end < text.size() && text[end] == '$') {
        ++end;
        while (end < text.size() && absl::ascii_isdigit(static_cast<unsigned char>(text[end]))) {
          ++end;
        }
      }
      tokens.push_back(text.substr(open, end - open));
    }
    open = text.find('[', close);
  }
  return tokens;
}

std::string WithoutSequence(const std::string& address) {
  const size_t dollar = address.find('$');
  return dollar == std::string::npos ? address : address.substr(0, dollar);
}

std::string RankList(const std::vector<int>& ranks) {
  return absl::StrCat(ranks.size() == 1 ? "rank " : "ranks ", absl::StrJoin(ranks, ", "));
}

}  // namespace

void PeerDirectory::Add(const std::string& address, int rank) {
  by_address_[address] = rank;
  by_listener_[WithoutSequence(address)] = rank;
}

std::optional<int> PeerDirectory::RankIn(const std::string& text) const {
  for (const std::string& token : AddressTokens(text)) {
    if (auto it = by_address_.find(token); it != by_address_.end()) return it->second;
    if (auto it = by_listener_.find(WithoutSequence(token)); it != by_listener_.end()) {
      return it->second;
    }
  }
  return std::nullopt;
}

std::string StripGlooLocation(const std::string& message) {
  if (!message.empty() && message.front() == '[') {
    const size_t end = message.find("] ");
    if (end != std::string::npos && message.substr(0, end).find(".cc:") != std::string::npos) {
      return message.substr(end + 2);
    }
  }
  return message;
}

GlooFailure ClassifyGlooError(const std::string& gloo_message, const PeerDirectory& peers,
                              std::chrono::milliseconds timeout,
                              const std::vector<int>& waiting_for) {
  const std::string message = StripGlooLocation(gloo_message);
  GlooFailure failure;
  failure.rank = peers.RankIn(message);
  const std::string lower = absl::AsciiStrToLower(message);
  const bool timed_out =
      absl::StrContains(lower, "timeout") || absl::StrContains(lower, "timed out");
  const bool closed = absl::StrContains(lower, "closed") || absl::StrContains(lower, "reset") ||
                      absl::StrContains(lower, "broken pipe") ||
                      absl::StrContains(lower, "refused");
  const std::string suspects =
      failure.rank ? absl::StrCat("rank ", *failure.rank) : RankList(waiting_for);
  if (timed_out) {
    failure.code = absl::StatusCode::kDeadlineExceeded;
    failure.what = failure.rank
                       ? absl::StrCat(suspects, " did not respond within ", DurationText(timeout))
                       : absl::StrCat("no progress within ", DurationText(timeout),
                                      " while waiting for ", suspects);
  } else if (closed) {
    failure.code = absl::StatusCode::kUnavailable;
    failure.what = failure.rank ? absl::StrCat(suspects, " closed its connection (node died?)")
                                : absl::StrCat("a connection closed while waiting for ", suspects,
                                               " (node died?)");
  } else {
    failure.code = absl::StatusCode::kUnavailable;
    failure.what = absl::StrCat("communication with ", suspects, " failed");
  }
  absl::StrAppend(&failure.what, " [gloo: ", message, "]");
  return failure;
}

}  // namespace gradflow::runtime::dist
