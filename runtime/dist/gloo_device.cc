#include "runtime/dist/gloo_device.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "gloo/transport/ibverbs/device.h"
#include "gloo/transport/tcp/device.h"

namespace gradflow::runtime::dist {
namespace {

constexpr char kLoopback[] = "127.0.0.1";

bool IsLoopback(const sockaddr* address) {
  if (address->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(address);
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (address->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
    return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
  }
  return false;
}

// The first InfiniBand device the kernel lists, or "" when there is none.
std::string FirstInfinibandDevice() {
  std::error_code error;
  std::filesystem::directory_iterator it("/sys/class/infiniband", error);
  if (error) return "";
  for (const auto& entry : it) return entry.path().filename().string();
  return "";
}

absl::StatusOr<GlooDevice> OpenIbverbs(const std::string& name) {
  gloo::transport::ibverbs::attr attr;
  attr.name = name;
  attr.port = 1;
  attr.index = 0;
  try {
    return GlooDevice{gloo::transport::ibverbs::CreateDevice(attr), "ibverbs"};
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot open InfiniBand device '", name, "': ", e.what()));
  }
}

absl::StatusOr<GlooDevice> OpenTcp(const std::string& hostname) {
  gloo::transport::tcp::attr attr;
  attr.hostname = hostname.empty() ? DefaultGlooHostname() : hostname;
  try {
    return GlooDevice{gloo::transport::tcp::CreateDevice(attr), "tcp"};
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot open a TCP device on host '", attr.hostname, "': ", e.what()));
  }
}

}  // namespace

std::string DefaultGlooHostname() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return kLoopback;
  addrinfo hints = {};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* results = nullptr;
  if (getaddrinfo(name, nullptr, &hints, &results) != 0) return kLoopback;
  bool routable = false;
  for (addrinfo* r = results; r != nullptr; r = r->ai_next) {
    if (!IsLoopback(r->ai_addr)) routable = true;
  }
  freeaddrinfo(results);
  return routable ? std::string(name) : std::string(kLoopback);
}

absl::StatusOr<GlooDevice> OpenGlooDevice(const GlooOptions& options) {
  if (options.transport == "tcp") return OpenTcp(options.hostname);
  if (options.transport == "ibverbs") {
    const std::string name = FirstInfinibandDevice();
    if (name.empty()) {
      return absl::UnavailableError(
          "transport 'ibverbs' was asked for but /sys/class/infiniband lists no device");
    }
    return OpenIbverbs(name);
  }
  if (options.transport == "auto") {
    const std::string name = FirstInfinibandDevice();
    if (!name.empty()) {
      absl::StatusOr<GlooDevice> ibverbs = OpenIbverbs(name);
      if (ibverbs.ok()) return ibverbs;
    }
    return OpenTcp(options.hostname);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown transport '", options.transport, "' (expected auto, tcp or ibverbs)"));
}

}  // namespace gradflow::runtime::dist
