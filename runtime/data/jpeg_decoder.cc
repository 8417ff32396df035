#include "runtime/data/jpeg_decoder.h"

#include <turbojpeg.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace gradflow::runtime::data {
namespace {

// No ImageNet image comes near this; it keeps a corrupt header from asking for gigabytes.
constexpr int64_t kMaxPixels = int64_t{1} << 28;

}  // namespace

JpegDecoder::JpegDecoder() : handle_(tjInitDecompress()) {}

JpegDecoder::~JpegDecoder() {
  if (handle_ != nullptr) tjDestroy(static_cast<tjhandle>(handle_));
}

absl::Status JpegDecoder::ReadHeader(const uint8_t* data, size_t size, JpegHeader* header) {
  if (handle_ == nullptr) return absl::InternalError("tjInitDecompress failed");
  tjhandle handle = static_cast<tjhandle>(handle_);
  int width = 0, height = 0, subsampling = 0, colorspace = 0;
  if (tjDecompressHeader3(handle, data, static_cast<unsigned long>(size), &width, &height,
                          &subsampling, &colorspace) != 0) {
    return absl::DataLossError(absl::StrCat("not a readable JPEG (", tjGetErrorStr2(handle), ")"));
  }
  if (width <= 0 || height <= 0 || int64_t{width} * height > kMaxPixels) {
    return absl::DataLossError(absl::StrCat("JPEG of unsupported size ", width, "x", height));
  }
  header->width = width;
  header->height = height;
  header->cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
  return absl::OkStatus();
}

absl::Status JpegDecoder::Decode(const uint8_t* data, size_t size, const JpegHeader& header,
                                 int scale_num, int scale_denom, RgbImage* image) {
  tjhandle handle = static_cast<tjhandle>(handle_);
  const JpegScale scale{scale_num, scale_denom};
  image->width = ScaledDimension(header.width, scale);
  image->height = ScaledDimension(header.height, scale);
  const size_t pixels = static_cast<size_t>(image->width) * static_cast<size_t>(image->height);
  image->pixels.resize(pixels * 3);
  // libjpeg cannot convert CMYK to RGB itself.
  uint8_t* target = image->pixels.data();
  if (header.cmyk) {
    cmyk_.resize(pixels * 4);
    target = cmyk_.data();
  }
  const int status =
      tjDecompress2(handle, data, static_cast<unsigned long>(size), target, image->width, 0,
                    image->height, header.cmyk ? TJPF_CMYK : TJPF_RGB, TJFLAG_FASTDCT);
  if (status != 0) {
    const char* message = tjGetErrorStr2(handle);
    const bool fatal = tjGetErrorCode(handle) == TJERR_FATAL;
    // libjpeg's JWRN_JPEG_EOF: the data ended early and the rest of the image is filler.
    const bool truncated = std::strstr(message, "Premature end") != nullptr;
    if (fatal || truncated) {
      return absl::DataLossError(absl::StrCat("JPEG decode failed (", message, ")"));
    }
  }
  if (header.cmyk) {
    // Adobe-style (inverted) CMYK, which is what JPEG files in the wild carry.
    for (size_t i = 0; i < pixels; ++i) {
      const unsigned k = cmyk_[4 * i + 3];
      for (int c = 0; c < 3; ++c) {
        image->pixels[3 * i + c] = static_cast<uint8_t>(cmyk_[4 * i + c] * k / 255);
      }
    }
  }
  return absl::OkStatus();
}

JpegScale PickScale(double crop_width, double crop_height, int64_t min_size) {
  int count = 0;
  const tjscalingfactor* factors = tjGetScalingFactors(&count);
  JpegScale best;
  double best_value = 1.0;
  for (int i = 0; i < count; ++i) {
    const double value = static_cast<double>(factors[i].num) / factors[i].denom;
    if (value >= best_value) continue;
    if (crop_width * value >= static_cast<double>(min_size) &&
        crop_height * value >= static_cast<double>(min_size)) {
      best = {factors[i].num, factors[i].denom};
      best_value = value;
    }
  }
  return best;
}

int ScaledDimension(int dimension, const JpegScale& scale) {
  return (dimension * scale.num + scale.denom - 1) / scale.denom;
}

}  // namespace gradflow::runtime::data
