#include "runtime/json/json.h"

#include <gtest/gtest.h>

#include <string>

namespace gradflow::runtime::json {
namespace {

TEST(JsonTest, ParsesATraceShapedDocument) {
  absl::StatusOr<JsonValue> v = ParseJson(
      R"({"traceEvents": [{"ph": "X", "ts": 1.5e3, "dur": 20, "args": {"step": 3, "ok": true,
          "name": "a\"b\u00e9"}}, null], "displayTimeUnit": "ms"})",
      "t.json");
  ASSERT_TRUE(v.ok()) << v.status();
  const JsonValue* events = v->Find("traceEvents");
  ASSERT_NE(events, nullptr);
  ASSERT_EQ(events->items().size(), 2u);
  const JsonValue& e = events->items()[0];
  EXPECT_DOUBLE_EQ(e.Find("ts")->number(), 1500);
  EXPECT_EQ(e.Find("args")->Find("name")->string(), "a\"b\xc3\xa9");
  EXPECT_TRUE(e.Find("args")->Find("ok")->bool_value());
  EXPECT_EQ(events->items()[1].kind(), JsonValue::Kind::kNull);
  EXPECT_EQ(v->Find("missing"), nullptr);
}

TEST(JsonTest, ErrorsNameTheSourceLineAndColumn) {
  absl::StatusOr<JsonValue> v = ParseJson("{\"a\": 1,\n \"b\" 2}", "trace.json");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().message(), "trace.json: line 2, column 6: expected ':' after a name");
  for (const char* bad : {"", "[1, 2", "{\"a\": tru}", "[1] 2", "\"\\q\"", "[01x]", "[1e999]"}) {
    EXPECT_FALSE(ParseJson(bad, "x").ok()) << bad;
  }
}

TEST(JsonTest, DeepNestingIsRefusedNotACrash) {
  const std::string deep(100000, '[');
  absl::StatusOr<JsonValue> v = ParseJson(deep, "deep.json");
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("nesting"), absl::string_view::npos);
}

TEST(JsonTest, MissingFileIsNamed) {
  absl::StatusOr<JsonValue> v = ReadJsonFile("/nonexistent/trace.json");
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("/nonexistent/trace.json"), absl::string_view::npos);
}

}  // namespace
}  // namespace gradflow::runtime::json
