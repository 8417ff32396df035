// Files the data tests write for themselves: gzipped IDX files and JPEGs made with TurboJPEG.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gradflow::runtime::data::testing {

// A fresh, empty directory under GRADFLOW_TEST_TMPDIR (or the system temp dir), unique per process
// and name.
std::string FreshTempDir(const std::string& name);

void WriteBytes(const std::string& path, const std::vector<uint8_t>& bytes);
// gzip-compresses `bytes` into `path`.
void WriteGzip(const std::string& path, const std::vector<uint8_t>& bytes);

// An IDX byte stream: big-endian magic 0x0800 | dims.size(), the sizes, then `values`.
std::vector<uint8_t> IdxBytes(const std::vector<uint32_t>& dims,
                              const std::vector<uint8_t>& values);

// An RGB JPEG of width x height whose pixel (x, y) is color(x, y), encoded with tjCompress2.
struct Rgb {
  uint8_t r, g, b;
};
std::vector<uint8_t> EncodeJpeg(int width, int height, Rgb (*color)(int x, int y),
                                int quality = 95);
std::vector<uint8_t> EncodeSolidJpeg(int width, int height, Rgb color);

}  // namespace gradflow::runtime::data::testing
