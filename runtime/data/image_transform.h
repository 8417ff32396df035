// Geometry and resampling of the ImageNet recipe: random-resized crop and flip for training,
// resize-then-center-crop for evaluation, both written as one resample of a source region.
#pragma once

#include <array>
#include <cstdint>

#include "runtime/data/rng.h"

namespace gradflow::runtime::data {

// A rectangle of the source image, in source pixels (may be fractional).
struct CropRegion {
  double x = 0;
  double y = 0;
  double width = 0;
  double height = 0;
};

// torchvision's RandomResizedCrop.get_params with scale (0.08, 1) and ratio (3/4, 4/3): up to
// 10 draws of area fraction (uniform) and aspect ratio (log-uniform); the first that fits is
// placed uniformly; otherwise the whole image clamped to the ratio range, centered.
CropRegion RandomResizedCropRegion(int64_t width, int64_t height, Rng& rng);

// Resize(shorter side -> crop_size * 256 / 224) then CenterCrop(crop_size), as torchvision's
// evaluation transform, expressed as the source region that ends up in the crop.
CropRegion CenterCropRegion(int64_t width, int64_t height, int64_t crop_size);

struct Normalization {
  std::array<float, 3> mean;
  std::array<float, 3> std;
};

// ImageNet's per-channel statistics of RGB in [0,1] (the values torchvision's examples use).
inline constexpr Normalization kImageNetNormalization = {{0.485f, 0.456f, 0.406f},
                                                         {0.229f, 0.224f, 0.225f}};

// Resamples `region` of an interleaved RGB8 image (`stride` bytes per row) to an out x out
// float CHW image, mirrored left-right when `flip`, scaled to [0,1] and normalized. The filter is
// a triangle whose support widens with the downscale factor (PIL's antialiased bilinear, which
// torchvision uses), so shrinking a large crop does not alias; for upscaling it is plain
// bilinear. Thread-safe; allocates a scratch buffer per call.
void ResampleToChw(const uint8_t* rgb, int64_t width, int64_t height, int64_t stride,
                   const CropRegion& region, int64_t out, bool flip,
                   const Normalization& normalization, float* out_chw);

}  // namespace gradflow::runtime::data
