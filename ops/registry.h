// The op schemas gradflow ships, registered once each.
#pragma once

#include "graph/op_schema.h"

namespace gradflow::ops {

// Built on first use from every schema file under ops/schemas/; never changes afterwards.
const graph::OpRegistry& StandardOps();

}  // namespace gradflow::ops
