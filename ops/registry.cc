#include "ops/registry.h"

#include "ops/schemas/schemas.h"

namespace gradflow::ops {

const graph::OpRegistry& StandardOps() {
  // Never destroyed: schemas are read from anywhere until the process ends.
  static const graph::OpRegistry* const registry = [] {
    auto* ops = new graph::OpRegistry();
    RegisterAdd(*ops);
    RegisterBatchNorm(*ops);
    RegisterBiasGrad(*ops);
    RegisterConv2D(*ops);
    RegisterFullyConnected(*ops);
    RegisterPooling(*ops);
    RegisterRelu(*ops);
    RegisterReshape(*ops);
    RegisterSoftmaxCrossEntropy(*ops);
    return ops;
  }();
  return *registry;
}

}  // namespace gradflow::ops
