// A small JSON reader for trace-summary: the whole document as a tree of values. General JSON
// (RFC 8259), with a nesting limit so a hostile file cannot exhaust the stack.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gradflow::runtime::trace {

struct JsonValue {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = Type::kNull;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<JsonValue> array;
  std::vector<std::pair<std::string, JsonValue>> object;  // in file order

  // The member named `key` of an object, or null when absent or not an object.
  const JsonValue* Find(absl::string_view key) const;
  // Convenience accessors with a fallback for absent members or other types.
  double NumberOr(absl::string_view key, double fallback) const;
  std::string StringOr(absl::string_view key, absl::string_view fallback) const;
};

inline constexpr int kMaxJsonDepth = 256;

// InvalidArgument "line L, column C: what was expected" for malformed text.
absl::StatusOr<JsonValue> ParseJson(absl::string_view text);

}  // namespace gradflow::runtime::trace
