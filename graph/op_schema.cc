#include "graph/op_schema.h"

#include <algorithm>
#include <cstdlib>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace gradflow::graph {

const AttrDef* OpSchema::FindAttr(std::string_view attr_name) const {
  for (const AttrDef& def : attrs) {
    if (def.name == attr_name) return &def;
  }
  return nullptr;
}

const AttrValue& Attrs::Get(std::string_view name) const {
  if (auto it = node_.attrs.find(name); it != node_.attrs.end()) return it->second;
  if (const AttrDef* def = schema_.FindAttr(name)) return def->default_value;
  // A schema asking for an attribute it never declared is a bug in the schema, not bad input.
  std::fprintf(stderr, "gradflow: op %s reads undeclared attribute '%.*s'\n", schema_.name.c_str(),
               static_cast<int>(name.size()), name.data());
  std::abort();
}

int64_t Attrs::Int(std::string_view name) const { return std::get<int64_t>(Get(name)); }
float Attrs::Float(std::string_view name) const { return std::get<float>(Get(name)); }
const std::vector<int64_t>& Attrs::Ints(std::string_view name) const {
  return std::get<std::vector<int64_t>>(Get(name));
}
const std::vector<float>& Attrs::Floats(std::string_view name) const {
  return std::get<std::vector<float>>(Get(name));
}
const std::string& Attrs::String(std::string_view name) const {
  return std::get<std::string>(Get(name));
}

absl::Status OpRegistry::Register(OpSchema schema) {
  if (schema.name.empty() || schema.version < 1) {
    return absl::InvalidArgumentError("op schema needs a name and a version >= 1");
  }
  if (!schema.infer) {
    return absl::InvalidArgumentError(absl::StrCat("op ", schema.name, " has no shape function"));
  }
  if (Find(schema.name, schema.version) != nullptr) {
    return absl::AlreadyExistsError(
        absl::StrCat("op ", schema.name, " version ", schema.version, " registered twice"));
  }
  auto& versions = by_name_[schema.name];
  versions.push_back(std::make_unique<OpSchema>(std::move(schema)));
  std::sort(versions.begin(), versions.end(),
            [](const auto& a, const auto& b) { return a->version < b->version; });
  return absl::OkStatus();
}

const OpSchema* OpRegistry::Find(std::string_view op, int32_t version) const {
  auto it = by_name_.find(absl::string_view(op.data(), op.size()));
  if (it == by_name_.end()) return nullptr;
  for (const auto& schema : it->second) {
    if (schema->version == version) return schema.get();
  }
  return nullptr;
}

bool OpRegistry::HasOp(std::string_view op) const { return by_name_.contains(absl::string_view(op.data(), op.size())); }

int32_t OpRegistry::LatestVersion(std::string_view op) const {
  auto it = by_name_.find(absl::string_view(op.data(), op.size()));
  return it == by_name_.end() ? 0 : it->second.back()->version;
}

std::vector<const OpSchema*> OpRegistry::All() const {
  std::vector<const OpSchema*> all;
  for (const auto& [name, versions] : by_name_) {
    for (const auto& schema : versions) all.push_back(schema.get());
  }
  std::sort(all.begin(), all.end(), [](const OpSchema* a, const OpSchema* b) {
    return a->name != b->name ? a->name < b->name : a->version < b->version;
  });
  return all;
}

absl::Status ValidateAttributes(const Node& node, const OpSchema& schema) {
  std::vector<std::string> problems;
  for (const auto& [name, value] : node.attrs) {
    const AttrDef* def = schema.FindAttr(name);
    if (def == nullptr) {
      problems.push_back(absl::StrCat("unknown attribute '", name, "'"));
    } else if (TypeOf(value) != TypeOf(def->default_value)) {
      problems.push_back(absl::StrCat("attribute '", name, "' is ", AttrTypeName(TypeOf(value)),
                                      ", expected ", AttrTypeName(TypeOf(def->default_value))));
    }
  }
  for (const AttrDef& def : schema.attrs) {
    if (def.required && !node.attrs.contains(def.name)) {
      problems.push_back(absl::StrCat("missing required attribute '", def.name, "'"));
    }
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(problems, "; "));
}

absl::StatusOr<std::vector<TensorType>> InferNodeOutputs(const Node& node, const OpSchema& schema,
                                                         std::span<const TensorType> inputs) {
  const int num_inputs = static_cast<int>(inputs.size());
  if (num_inputs < schema.min_inputs || num_inputs > schema.max_inputs) {
    return absl::InvalidArgumentError(
        schema.min_inputs == schema.max_inputs
            ? absl::StrCat(schema.name, " takes ", schema.min_inputs, " inputs, got ", num_inputs)
            : absl::StrCat(schema.name, " takes ", schema.min_inputs, " to ", schema.max_inputs,
                           " inputs, got ", num_inputs));
  }
  // Shape functions read attributes through Attrs, which trusts their names and types.
  if (absl::Status s = ValidateAttributes(node, schema); !s.ok()) return s;
  Attrs attrs(node, schema);
  return schema.infer(InferContext{node, attrs, inputs});
}

}  // namespace gradflow::graph
