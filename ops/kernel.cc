#include "ops/kernel.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace gradflow::ops {

const char* DeviceTypeName(DeviceType device) {
  switch (device) {
    case DeviceType::kCpu:
      return "cpu";
    case DeviceType::kCuda:
      return "cuda";
  }
  return "?";
}

absl::Status KernelRegistry::Register(std::string op, DeviceType device, graph::DType dtype,
                                      KernelFactory factory) {
  Key key{op, device, dtype};
  if (factories_.contains(key)) {
    return absl::AlreadyExistsError(absl::StrCat("kernel for ", op, " on ", DeviceTypeName(device),
                                                 " in ", graph::DTypeName(dtype),
                                                 " registered twice"));
  }
  factories_.emplace(std::move(key), std::move(factory));
  return absl::OkStatus();
}

bool KernelRegistry::Has(std::string_view op, DeviceType device, graph::DType dtype) const {
  return factories_.contains(Key{std::string(op), device, dtype});
}

absl::StatusOr<std::unique_ptr<Kernel>> KernelRegistry::Create(const KernelSpec& spec,
                                                               graph::DType dtype) const {
  const DeviceType device = spec.device.type();
  auto it = factories_.find(Key{spec.node.op, device, dtype});
  if (it == factories_.end()) {
    return absl::NotFoundError(absl::StrCat("node '", spec.node.name, "': no ", spec.node.op,
                                            " kernel on ", DeviceTypeName(device), " for ",
                                            graph::DTypeName(dtype)));
  }
  absl::StatusOr<std::unique_ptr<Kernel>> kernel = it->second(spec);
  if (!kernel.ok()) {
    return absl::Status(kernel.status().code(),
                        absl::StrCat("node '", spec.node.name, "' (", spec.node.op, " on ",
                                     DeviceTypeName(device), "): ", kernel.status().message()));
  }
  return kernel;
}

std::vector<std::string> KernelRegistry::OpsOn(DeviceType device) const {
  std::vector<std::string> ops;
  for (const auto& [key, factory] : factories_) {
    if (std::get<1>(key) == device) ops.push_back(std::get<0>(key));
  }
  std::sort(ops.begin(), ops.end());
  ops.erase(std::unique(ops.begin(), ops.end()), ops.end());
  return ops;
}

}  // namespace gradflow::ops
