#include "graph/attribute.h"

#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace gradflow::graph {

const char* AttrTypeName(AttrType type) {
  switch (type) {
    case AttrType::kInt:
      return "int";
    case AttrType::kFloat:
      return "float";
    case AttrType::kInts:
      return "ints";
    case AttrType::kFloats:
      return "floats";
    case AttrType::kString:
      return "string";
  }
  return "?";
}

std::string AttrValueToString(const AttrValue& value) {
  return std::visit(
      [](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          return absl::StrCat("\"", v, "\"");
        } else if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, float>) {
          return absl::StrCat(v);
        } else {
          return absl::StrCat("[", absl::StrJoin(v, ","), "]");
        }
      },
      value);
}

}  // namespace gradflow::graph
