// A small JSON reader for the files the runtime reads back (Chrome traces, run summaries): no
// JSON library is a dependency. Traces are machine-written but may be truncated or hand-edited,
// so every error names the source and the line and column where parsing stopped.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace gradflow::runtime::json {

class JsonValue {
 public:
  enum class Kind : int8_t { kNull, kBool, kNumber, kString, kArray, kObject };

  JsonValue() = default;
  static JsonValue Bool(bool value);
  static JsonValue Number(double value);
  static JsonValue String(std::string value);
  static JsonValue Array(std::vector<JsonValue> items);
  static JsonValue Object(std::vector<std::pair<std::string, JsonValue>> members);

  Kind kind() const { return kind_; }
  bool is_number() const { return kind_ == Kind::kNumber; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_array() const { return kind_ == Kind::kArray; }
  bool is_object() const { return kind_ == Kind::kObject; }

  bool bool_value() const { return bool_; }
  double number() const { return number_; }
  const std::string& string() const { return string_; }
  const std::vector<JsonValue>& items() const { return items_; }
  const std::vector<std::pair<std::string, JsonValue>>& members() const { return members_; }

  // The member named `key` of an object, or null when absent (or when this is not an object).
  const JsonValue* Find(std::string_view key) const;
  // A member's number or string, or `fallback` when absent or of another kind.
  double NumberOr(std::string_view key, double fallback) const;
  std::string StringOr(std::string_view key, std::string_view fallback) const;

 private:
  Kind kind_ = Kind::kNull;
  bool bool_ = false;
  double number_ = 0;
  std::string string_;
  std::vector<JsonValue> items_;
  std::vector<std::pair<std::string, JsonValue>> members_;
};

// Parses one JSON document (RFC 8259; nesting up to 200 levels). `source` names the text in
// errors, e.g. "trace.json: line 3, column 17: expected ',' or '}' in an object".
absl::StatusOr<JsonValue> ParseJson(std::string_view text, std::string_view source);

// Reads and parses a file; errors name the path.
absl::StatusOr<JsonValue> ReadJsonFile(const std::string& path);

}  // namespace gradflow::runtime::json
