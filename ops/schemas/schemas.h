// One registration function per op family; each registers the forward op(s) of its file and the
// backward ops their gradient rules emit.
#pragma once

#include "graph/op_schema.h"

namespace gradflow::ops {

void RegisterAdd(graph::OpRegistry& registry);                  // Add
void RegisterBatchNorm(graph::OpRegistry& registry);            // BatchNorm, BatchNormGrad
void RegisterBiasGrad(graph::OpRegistry& registry);             // BiasGrad (conv and FC share it)
void RegisterConv2D(graph::OpRegistry& registry);               // Conv2D and its backward ops
void RegisterFullyConnected(graph::OpRegistry& registry);       // FullyConnected and backward ops
void RegisterPooling(graph::OpRegistry& registry);              // Max/Avg/GlobalAvgPool and grads
void RegisterRelu(graph::OpRegistry& registry);                 // Relu, ReluGrad
void RegisterReshape(graph::OpRegistry& registry);              // Reshape, Flatten
void RegisterSoftmaxCrossEntropy(graph::OpRegistry& registry);  // SoftmaxCrossEntropy and grad

}  // namespace gradflow::ops
