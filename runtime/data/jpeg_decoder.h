// A TurboJPEG decompressor that decodes at the smallest DCT scale still large enough for the
// crop that will be taken: a 1/2 or 1/4 scale decode skips most of the IDCT and color work.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace gradflow::runtime::data {

struct JpegHeader {
  int width = 0;
  int height = 0;
  bool cmyk = false;  // CMYK or YCCK: decoded through CMYK, converted to RGB here
};

struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // interleaved RGB, width * 3 bytes per row
};

// Not thread-safe: use one per thread (the handle keeps decoder state).
class JpegDecoder {
 public:
  JpegDecoder();
  ~JpegDecoder();
  JpegDecoder(const JpegDecoder&) = delete;
  JpegDecoder& operator=(const JpegDecoder&) = delete;

  // Errors are DataLoss with TurboJPEG's message (the caller adds the file name).
  absl::Status ReadHeader(const uint8_t* data, size_t size, JpegHeader* header);

  // Decodes to RGB scaled by `scale_num / scale_denom` (one of TurboJPEG's factors, see
  // PickScale). A truncated stream is an error: TurboJPEG would fill the rest with gray and
  // only warn. Other warnings (e.g. extraneous bytes before a marker, common in ImageNet) are
  // accepted, as PIL accepts them.
  absl::Status Decode(const uint8_t* data, size_t size, const JpegHeader& header, int scale_num,
                      int scale_denom, RgbImage* image);

 private:
  void* handle_;
  std::vector<uint8_t> cmyk_;
};

struct JpegScale {
  int num = 1;
  int denom = 1;
};

// The smallest TurboJPEG scaling factor (<= 1) at which a crop of crop_width x crop_height
// source pixels still covers at least min_size x min_size decoded pixels; 1/1 when none does.
JpegScale PickScale(double crop_width, double crop_height, int64_t min_size);

// Dimension of a scaled decode (TurboJPEG's TJSCALED: rounded up).
int ScaledDimension(int dimension, const JpegScale& scale);

}  // namespace gradflow::runtime::data
