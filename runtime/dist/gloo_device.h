// Picks and opens the Gloo transport device (TCP or ibverbs) a lane communicates through.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "gloo/transport/device.h"
#include "runtime/dist/gloo_collectives.h"

namespace gradflow::runtime::dist {

struct GlooDevice {
  std::shared_ptr<gloo::transport::Device> device;
  std::string transport;  // "tcp" or "ibverbs"
};

// Opens a device as options.transport and options.hostname ask (see GlooOptions).
absl::StatusOr<GlooDevice> OpenGlooDevice(const GlooOptions& options);

// The TCP address peers reach this machine at when GlooOptions::hostname is "".
std::string DefaultGlooHostname();

}  // namespace gradflow::runtime::dist
