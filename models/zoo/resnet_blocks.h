// Residual blocks as torchvision defines them (ResNet v1.5: the stride sits on the 3x3 conv), named
// like torchvision's modules so that state dicts match by name. Call inside the block's scope
// ("layer1.0").
#pragma once

#include <cstdint>

#include "models/builder.h"

namespace gradflow::models::zoo {

enum class BlockKind { kBasic, kBottleneck };

// Output channels per unit of `planes`: 1 for BasicBlock, 4 for Bottleneck.
int64_t Expansion(BlockKind kind);

// relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), 3x3 convs.
Value BasicBlock(ModelBuilder& b, Value x, int64_t planes, int64_t stride, bool zero_gamma);

// relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + shortcut(x)): 1x1, 3x3 (strided),
// 1x1 to 4 * planes.
Value Bottleneck(ModelBuilder& b, Value x, int64_t planes, int64_t stride, bool zero_gamma);

// One stage ("layerN"): `blocks` blocks, the first with `stride` (and the shortcut projection
// when the shape changes), each in its own scope "<index>".
Value ResidualStage(ModelBuilder& b, Value x, BlockKind kind, int64_t planes, int blocks,
                    int64_t stride, bool zero_gamma);

}  // namespace gradflow::models::zoo
