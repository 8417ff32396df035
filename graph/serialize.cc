#include "graph/serialize.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "flatbuffers/flatbuffers.h"
#include "graph/graph_generated.h"
#include "graph/verify.h"

namespace gradflow::graph {
namespace {

namespace fbs = ::gradflow::graph::fb;

flatbuffers::Offset<fbs::Attribute> WriteAttribute(flatbuffers::FlatBufferBuilder& fbb,
                                                   const std::string& name,
                                                   const AttrValue& value) {
  auto name_offset = fbb.CreateSharedString(name);
  flatbuffers::Offset<flatbuffers::Vector<int64_t>> ints;
  flatbuffers::Offset<flatbuffers::Vector<float>> floats;
  flatbuffers::Offset<flatbuffers::String> str;
  int64_t i = 0;
  float f = 0;
  switch (TypeOf(value)) {
    case AttrType::kInt:
      i = std::get<int64_t>(value);
      break;
    case AttrType::kFloat:
      f = std::get<float>(value);
      break;
    case AttrType::kInts:
      ints = fbb.CreateVector(std::get<std::vector<int64_t>>(value));
      break;
    case AttrType::kFloats:
      floats = fbb.CreateVector(std::get<std::vector<float>>(value));
      break;
    case AttrType::kString:
      str = fbb.CreateString(std::get<std::string>(value));
      break;
  }
  return fbs::CreateAttribute(fbb, name_offset, static_cast<fbs::AttrType>(TypeOf(value)), i, f,
                              ints, floats, str);
}

absl::Status Corrupt(std::string_view source, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(std::string(source), ": ", what));
}

// The verifier only guarantees 4-byte alignment of vectors, so 8-byte elements of a crafted
// file may sit misaligned: copy bytes instead of reading elements in place.
template <typename T>
std::vector<T> ToVector(const flatbuffers::Vector<T>* v) {
  if (v == nullptr || v->size() == 0) return {};
  std::vector<T> out(v->size());
  std::memcpy(out.data(), v->Data(), out.size() * sizeof(T));
  return out;
}

std::string ToString(const flatbuffers::String* s) {
  return s == nullptr ? std::string() : s->str();
}

template <typename Enum>
bool InRange(Enum value, int count) {
  const int v = static_cast<int>(value);
  return v >= 0 && v < count;
}

absl::StatusOr<AttrValue> ReadAttribute(const fbs::Attribute& attr) {
  switch (attr.type()) {
    case fbs::AttrType::Int:
      return AttrValue(attr.i());
    case fbs::AttrType::Float:
      return AttrValue(attr.f());
    case fbs::AttrType::Ints:
      return AttrValue(ToVector(attr.ints()));
    case fbs::AttrType::Floats:
      return AttrValue(ToVector(attr.floats()));
    case fbs::AttrType::String:
      return AttrValue(ToString(attr.s()));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown attribute type ", static_cast<int>(attr.type())));
}

absl::StatusOr<Tensor> ReadTensor(const fbs::Tensor& t, size_t index) {
  Tensor tensor;
  tensor.name = t.name()->str();
  auto bad = [&](const char* what, int value) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor ", index, " '", tensor.name, "' has unknown ", what, " ", value));
  };
  if (!InRange(t.dtype(), kNumDTypes)) return bad("dtype", static_cast<int>(t.dtype()));
  if (!InRange(t.role(), kNumTensorRoles)) return bad("role", static_cast<int>(t.role()));
  tensor.dtype = static_cast<DType>(t.dtype());
  tensor.role = static_cast<TensorRole>(t.role());
  tensor.shape = ToVector(t.shape());
  if (const fbs::Initializer* init = t.init()) {
    if (!InRange(init->kind(), kNumInitKinds)) {
      return bad("initializer kind", static_cast<int>(init->kind()));
    }
    tensor.init = Initializer{static_cast<InitKind>(init->kind()), init->value()};
  }
  tensor.buffer = t.buffer();
  return tensor;
}

absl::StatusOr<Node> ReadNode(const fbs::Node& n, size_t index) {
  Node node;
  node.name = n.name()->str();
  node.op = n.op()->str();
  node.op_version = n.op_version();
  node.inputs = ToVector(n.inputs());
  node.outputs = ToVector(n.outputs());
  if (!InRange(n.phase(), kNumPhases)) {
    return absl::InvalidArgumentError(absl::StrCat("node ", index, " '", node.name,
                                                   "' has unknown phase ",
                                                   static_cast<int>(n.phase())));
  }
  node.phase = static_cast<Phase>(n.phase());
  if (n.attrs() != nullptr) {
    for (const fbs::Attribute* attr : *n.attrs()) {
      absl::StatusOr<AttrValue> value = ReadAttribute(*attr);
      const std::string name = attr->name()->str();
      if (!value.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("node '", node.name, "' attribute '", name,
                                                       "': ", value.status().message()));
      }
      if (!node.attrs.emplace(name, *std::move(value)).second) {
        return absl::InvalidArgumentError(
            absl::StrCat("node '", node.name, "' has attribute '", name, "' twice"));
      }
    }
  }
  return node;
}

}  // namespace

std::vector<uint8_t> Serialize(const Graph& graph) {
  flatbuffers::FlatBufferBuilder fbb(1 << 16);

  std::vector<flatbuffers::Offset<fbs::Tensor>> tensors;
  tensors.reserve(graph.tensors.size());
  for (const Tensor& t : graph.tensors) {
    auto init = fbs::CreateInitializer(fbb, static_cast<fbs::InitKind>(t.init.kind), t.init.value);
    tensors.push_back(fbs::CreateTensor(fbb, fbb.CreateString(t.name),
                                        static_cast<fbs::DType>(t.dtype), fbb.CreateVector(t.shape),
                                        static_cast<fbs::TensorRole>(t.role), init, t.buffer));
  }

  std::vector<flatbuffers::Offset<fbs::Node>> nodes;
  nodes.reserve(graph.nodes.size());
  for (const Node& n : graph.nodes) {
    std::vector<flatbuffers::Offset<fbs::Attribute>> attrs;
    for (const auto& [name, value] : n.attrs) attrs.push_back(WriteAttribute(fbb, name, value));
    nodes.push_back(fbs::CreateNode(fbb, fbb.CreateString(n.name), fbb.CreateSharedString(n.op),
                                    n.op_version, fbb.CreateVector(n.inputs),
                                    fbb.CreateVector(n.outputs), fbb.CreateVector(attrs),
                                    static_cast<fbs::Phase>(n.phase)));
  }

  std::vector<fbs::ParamGrad> param_grads;
  for (const ParamGrad& pg : graph.param_grads) param_grads.emplace_back(pg.param, pg.grad);

  std::vector<flatbuffers::Offset<fbs::KeyValue>> metadata;
  for (const auto& [key, value] : graph.metadata) {
    metadata.push_back(fbs::CreateKeyValue(fbb, fbb.CreateString(key), fbb.CreateString(value)));
  }

  std::vector<flatbuffers::Offset<fbs::Buffer>> buffers;
  for (const Buffer& b : graph.buffers) {
    fbb.ForceVectorAlignment(b.data.size(), sizeof(uint8_t), 16);
    buffers.push_back(fbs::CreateBuffer(fbb, fbb.CreateVector(b.data)));
  }

  auto root = fbs::CreateGraph(
      fbb, kFormatVersion, fbb.CreateString(graph.name), fbb.CreateString(graph.producer),
      fbb.CreateVector(tensors), fbb.CreateVector(nodes), fbb.CreateVector(graph.inputs),
      fbb.CreateVector(graph.labels), graph.loss, fbb.CreateVectorOfStructs(param_grads),
      fbb.CreateVector(metadata), fbb.CreateVector(buffers));
  fbs::FinishGraphBuffer(fbb, root);
  return std::vector<uint8_t>(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
}

absl::StatusOr<Graph> Deserialize(std::span<const uint8_t> bytes, std::string_view source) {
  if (bytes.empty()) return Corrupt(source, "file is empty, not a gradflow graph");
  // Root offset plus identifier: anything shorter cannot be a flatbuffer with an identifier.
  if (bytes.size() < 8) {
    return Corrupt(source, absl::StrCat("file is ", bytes.size(),
                                        " bytes, too short to be a gradflow graph"));
  }
  if (!fbs::GraphBufferHasIdentifier(bytes.data())) {
    return Corrupt(source, absl::StrCat("not a gradflow graph (file identifier is not \"",
                                        fbs::GraphIdentifier(), "\")"));
  }
  flatbuffers::Verifier verifier(bytes.data(), bytes.size());
  if (!fbs::VerifyGraphBuffer(verifier)) {
    return Corrupt(source, "graph file is corrupt or truncated (flatbuffers verifier failed)");
  }
  const fbs::Graph* root = fbs::GetGraph(bytes.data());
  if (root->format_version() == 0) return Corrupt(source, "graph file has no format version");
  if (root->format_version() > kFormatVersion) {
    return Corrupt(source, absl::StrCat("graph format version ", root->format_version(),
                                        " is newer than this build reads (", kFormatVersion,
                                        "); rebuild it with this modelc or upgrade gradflow"));
  }

  Graph graph;
  graph.name = ToString(root->name());
  graph.producer = ToString(root->producer());
  if (root->tensors() != nullptr) {
    graph.tensors.reserve(root->tensors()->size());
    for (const fbs::Tensor* t : *root->tensors()) {
      absl::StatusOr<Tensor> tensor = ReadTensor(*t, graph.tensors.size());
      if (!tensor.ok()) return Corrupt(source, tensor.status().message());
      graph.tensors.push_back(*std::move(tensor));
    }
  }
  if (root->nodes() != nullptr) {
    graph.nodes.reserve(root->nodes()->size());
    for (const fbs::Node* n : *root->nodes()) {
      absl::StatusOr<Node> node = ReadNode(*n, graph.nodes.size());
      if (!node.ok()) return Corrupt(source, node.status().message());
      graph.nodes.push_back(*std::move(node));
    }
  }
  graph.inputs = ToVector(root->inputs());
  graph.labels = ToVector(root->labels());
  graph.loss = root->loss();
  if (root->param_grads() != nullptr) {
    for (const fbs::ParamGrad* pg : *root->param_grads()) {
      graph.param_grads.push_back(ParamGrad{pg->param(), pg->grad()});
    }
  }
  if (root->metadata() != nullptr) {
    for (const fbs::KeyValue* kv : *root->metadata()) {
      graph.metadata.emplace_back(kv->key()->str(), ToString(kv->value()));
    }
  }
  if (root->buffers() != nullptr) {
    for (const fbs::Buffer* b : *root->buffers()) graph.buffers.push_back(Buffer{ToVector(b->data())});
  }
  return graph;
}

absl::StatusOr<Graph> ParseGraph(std::span<const uint8_t> bytes, std::string_view source,
                                 const OpRegistry& registry) {
  absl::StatusOr<Graph> graph = Deserialize(bytes, source);
  if (!graph.ok()) return graph.status();
  if (absl::Status status = VerifyGraph(*graph, registry); !status.ok()) {
    return absl::Status(status.code(), absl::StrCat(std::string(source), ": ", status.message()));
  }
  return graph;
}

absl::StatusOr<Graph> LoadGraph(const std::string& path, const OpRegistry& registry) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": is a directory, not a graph file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  }
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read failed"));
  return ParseGraph(bytes, path, registry);
}

absl::Status SaveGraph(const Graph& graph, const std::string& path) {
  const std::vector<uint8_t> bytes = Serialize(graph);
  const std::string temp = absl::StrCat(path, ".tmp.", ::getpid());
  auto fail = [&](const char* what) {
    const int err = errno;
    ::unlink(temp.c_str());
    return absl::UnavailableError(absl::StrCat(path, ": ", what, ": ", std::strerror(err)));
  };
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat(path, ": cannot create ", temp, ": ", std::strerror(errno)));
  }
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return fail("write failed");
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    return fail("fsync failed");
  }
  if (::close(fd) != 0) return fail("close failed");
  if (::rename(temp.c_str(), path.c_str()) != 0) return fail("rename failed");
  return absl::OkStatus();
}

}  // namespace gradflow::graph
