#include "tests/runtime_data/test_files.h"

#include <turbojpeg.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"

namespace gradflow::runtime::data::testing {

std::string FreshTempDir(const std::string& name) {
  const char* root = std::getenv("GRADFLOW_TEST_TMPDIR");
  const std::filesystem::path base =
      root != nullptr ? std::filesystem::path(root) : std::filesystem::temp_directory_path();
  const std::filesystem::path dir = base / (name + "." + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

void WriteBytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  if (!out) ADD_FAILURE() << "cannot write " << path;
}

void WriteGzip(const std::string& path, const std::vector<uint8_t>& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  if (file == nullptr) {
    ADD_FAILURE() << "cannot open " << path;
    return;
  }
  if (!bytes.empty() && gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())) !=
                            static_cast<int>(bytes.size())) {
    ADD_FAILURE() << "cannot write " << path;
  }
  gzclose(file);
}

std::vector<uint8_t> IdxBytes(const std::vector<uint32_t>& dims,
                              const std::vector<uint8_t>& values) {
  std::vector<uint8_t> bytes = {0, 0, 0x08, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<uint8_t>(d >> shift));
  }
  bytes.insert(bytes.end(), values.begin(), values.end());
  return bytes;
}

std::vector<uint8_t> EncodeJpeg(int width, int height, Rgb (*color)(int x, int y), int quality) {
  std::vector<uint8_t> pixels(static_cast<size_t>(width) * height * 3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const Rgb c = color(x, y);
      uint8_t* p = &pixels[(static_cast<size_t>(y) * width + x) * 3];
      p[0] = c.r;
      p[1] = c.g;
      p[2] = c.b;
    }
  }
  tjhandle handle = tjInitCompress();
  unsigned char* jpeg = nullptr;
  unsigned long size = 0;
  if (tjCompress2(handle, pixels.data(), width, 0, height, TJPF_RGB, &jpeg, &size, TJSAMP_420,
                  quality, 0) != 0) {
    ADD_FAILURE() << "tjCompress2: " << tjGetErrorStr2(handle);
    tjDestroy(handle);
    return {};
  }
  std::vector<uint8_t> bytes(jpeg, jpeg + size);
  tjFree(jpeg);
  tjDestroy(handle);
  return bytes;
}

std::vector<uint8_t> EncodeSolidJpeg(int width, int height, Rgb color) {
  static thread_local Rgb solid;
  solid = color;
  return EncodeJpeg(width, height, [](int, int) { return solid; });
}

}  // namespace gradflow::runtime::data::testing
