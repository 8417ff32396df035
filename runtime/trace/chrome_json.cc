#include "runtime/trace/chrome_json.h"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace gradflow::runtime::trace {
namespace {

// Length of the valid UTF-8 sequence starting at text[i], or 0 when it is not one.
size_t Utf8SequenceLength(absl::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  size_t length = 0;
  uint32_t min_code = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
    min_code = 0x80;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    min_code = 0x800;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    min_code = 0x10000;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  uint32_t code = lead & (0x7F >> length);
  for (size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    code = (code << 6) | (byte(i + k) & 0x3F);
  }
  if (code < min_code || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
  return length;
}

std::string ErrnoText() { return std::strerror(errno); }

}  // namespace

void AppendJsonString(std::string* out, absl::string_view text) {
  out->push_back('"');
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      const size_t length = Utf8SequenceLength(text, i);
      if (length == 0) {
        out->append("\\ufffd");
        ++i;
      } else {
        out->append(text.data() + i, length);
        i += length;
      }
      continue;
    }
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20) {
          absl::StrAppendFormat(out, "\\u%04x", c);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out->push_back('"');
}

std::string JsonString(absl::string_view text) {
  std::string out;
  AppendJsonString(&out, text);
  return out;
}

void AppendJsonNumber(std::string* out, double value) {
  if (!std::isfinite(value)) {
    out->append("null");
  } else if (value == std::floor(value) && std::fabs(value) < 1e15) {
    absl::StrAppendFormat(out, "%.0f", value);
  } else {
    absl::StrAppendFormat(out, "%.9g", value);
  }
}

void AppendJsonMicros(std::string* out, double micros) {
  if (!std::isfinite(micros)) {
    out->append("null");
  } else {
    absl::StrAppendFormat(out, "%.3f", micros);
  }
}

absl::Status WriteTraceFile(const std::string& path, const std::vector<std::string>& event_lists,
                            const std::string& other_data_json) {
  const std::string tmp = absl::StrCat(path, ".tmp.", ::getpid());
  std::FILE* file = std::fopen(tmp.c_str(), "wb");
  if (file == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("trace file ", path, ": cannot create ", tmp, ": ", ErrnoText()));
  }
  bool ok = std::fputs("{\"traceEvents\":[\n", file) >= 0;
  bool first = true;
  for (const std::string& list : event_lists) {
    if (list.empty()) continue;
    if (!first) ok = ok && std::fputs(",\n", file) >= 0;
    ok = ok && std::fwrite(list.data(), 1, list.size(), file) == list.size();
    first = false;
  }
  ok = ok && std::fputs("\n],\n\"displayTimeUnit\":\"ms\",\n\"otherData\":", file) >= 0;
  ok = ok && std::fputs(other_data_json.empty() ? "{}" : other_data_json.c_str(), file) >= 0;
  ok = ok && std::fputs("}\n", file) >= 0;
  const std::string write_error = ok ? "" : ErrnoText();
  if (std::fclose(file) != 0 && ok) {
    ok = false;
  }
  if (!ok) {
    std::remove(tmp.c_str());
    return absl::UnavailableError(absl::StrCat("trace file ", path, ": writing failed: ",
                                               write_error.empty() ? ErrnoText() : write_error));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string error = ErrnoText();
    std::remove(tmp.c_str());
    return absl::UnavailableError(
        absl::StrCat("trace file ", path, ": cannot rename ", tmp, " into place: ", error));
  }
  return absl::OkStatus();
}

}  // namespace gradflow::runtime::trace
