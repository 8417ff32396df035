// Generic typed node attributes, stored by name.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace gradflow::graph {

using AttrValue =
    std::variant<int64_t, float, std::vector<int64_t>, std::vector<float>, std::string>;

// Ordered so that saving is deterministic.
using AttrMap = std::map<std::string, AttrValue, std::less<>>;

enum class AttrType : int8_t { kInt = 0, kFloat, kInts, kFloats, kString };

inline AttrType TypeOf(const AttrValue& value) { return static_cast<AttrType>(value.index()); }
const char* AttrTypeName(AttrType type);
std::string AttrValueToString(const AttrValue& value);

}  // namespace gradflow::graph
