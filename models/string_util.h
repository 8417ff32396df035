// Debian's Abseil 20220623 has its own string_view type, and absl::StrCat does not take
// std::string_view: convert at the call.
#pragma once

#include <string_view>

#include "absl/strings/string_view.h"

namespace gradflow::models {

inline absl::string_view Sv(std::string_view text) { return {text.data(), text.size()}; }

}  // namespace gradflow::models
