#include "runtime/dist/rendezvous.h"

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace gradflow::runtime::dist {
namespace {

constexpr char kAcceptedForms[] = "expected file:///absolute/dir or redis://host:port";

absl::Status Invalid(const std::string& uri, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("'", uri, "' ", why, " (", kAcceptedForms, ")"));
}

}  // namespace

std::string RendezvousSpec::ToString() const {
  if (kind == Kind::kFile) return absl::StrCat("file://", path);
  return absl::StrCat("redis://", host, ":", port);
}

absl::StatusOr<RendezvousSpec> ParseRendezvous(const std::string& uri) {
  absl::string_view rest = uri;
  RendezvousSpec spec;
  if (absl::ConsumePrefix(&rest, "file://")) {
    if (rest.empty() || rest.front() != '/') {
      return Invalid(uri, "does not name an absolute directory");
    }
    spec.kind = RendezvousSpec::Kind::kFile;
    spec.path = std::string(rest);
    while (spec.path.size() > 1 && spec.path.back() == '/') spec.path.pop_back();
    return spec;
  }
  if (absl::ConsumePrefix(&rest, "redis://")) {
    absl::ConsumeSuffix(&rest, "/");
    const size_t colon = rest.rfind(':');
    if (colon == absl::string_view::npos) return Invalid(uri, "has no port");
    absl::string_view host = rest.substr(0, colon);
    absl::string_view port_text = rest.substr(colon + 1);
    if (host.empty()) return Invalid(uri, "has no host");
    int port = 0;
    if (!absl::SimpleAtoi(port_text, &port) || port <= 0 || port > 65535) {
      return Invalid(uri, absl::StrCat("has an invalid port '", port_text, "'"));
    }
    spec.kind = RendezvousSpec::Kind::kRedis;
    spec.host = std::string(host);
    spec.port = port;
    return spec;
  }
  return Invalid(uri, "is not a rendezvous URI");
}

}  // namespace gradflow::runtime::dist
