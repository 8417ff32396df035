// GoogleTest assertion for absl::Status results, printing the status when it fails. Header-only:
// the support library itself does not depend on GoogleTest.
#pragma once

#include "absl/status/status.h"
#include "gtest/gtest.h"

#define GRADFLOW_ASSERT_OK(expr)                                        \
  do {                                                                  \
    const ::absl::Status gradflow_assert_status = (expr);               \
    ASSERT_TRUE(gradflow_assert_status.ok()) << gradflow_assert_status; \
  } while (false)
