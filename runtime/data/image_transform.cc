#include "runtime/data/image_transform.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace gradflow::runtime::data {
namespace {

constexpr double kMinArea = 0.08;
constexpr double kMinRatio = 3.0 / 4.0;
constexpr double kMaxRatio = 4.0 / 3.0;
constexpr int kCropAttempts = 10;

// For each output sample along one axis: the first source pixel it reads and normalized weights.
struct AxisTaps {
  int64_t max_taps = 0;
  std::vector<int64_t> first;
  std::vector<int64_t> count;
  std::vector<float> weights;  // out x max_taps
};

AxisTaps ComputeTaps(int64_t source_length, double start, double length, int64_t out) {
  AxisTaps taps;
  const double scale = length / static_cast<double>(out);
  const double support = std::max(scale, 1.0);  // filter radius in source pixels
  taps.max_taps = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  taps.first.resize(out);
  taps.count.resize(out);
  taps.weights.assign(out * taps.max_taps, 0.0f);
  for (int64_t i = 0; i < out; ++i) {
    const double center = start + (static_cast<double>(i) + 0.5) * scale;
    int64_t lo = static_cast<int64_t>(std::floor(center - support + 0.5));
    int64_t hi = static_cast<int64_t>(std::floor(center + support + 0.5));  // exclusive
    lo = std::clamp<int64_t>(lo, 0, source_length - 1);
    hi = std::clamp<int64_t>(hi, lo + 1, source_length);
    hi = std::min(hi, lo + taps.max_taps);
    double total = 0;
    float* w = &taps.weights[i * taps.max_taps];
    for (int64_t j = lo; j < hi; ++j) {
      const double distance = std::abs((static_cast<double>(j) + 0.5 - center) / support);
      const double weight = std::max(0.0, 1.0 - distance);
      w[j - lo] = static_cast<float>(weight);
      total += weight;
    }
    if (total <= 0) {  // center beyond the image edge: take the nearest pixel
      std::fill(w, w + (hi - lo), 0.0f);
      const int64_t nearest = std::clamp<int64_t>(static_cast<int64_t>(center), lo, hi - 1);
      w[nearest - lo] = 1.0f;
      total = 1.0;
    }
    for (int64_t j = 0; j < hi - lo; ++j) w[j] = static_cast<float>(w[j] / total);
    taps.first[i] = lo;
    taps.count[i] = hi - lo;
  }
  return taps;
}

}  // namespace

CropRegion RandomResizedCropRegion(int64_t width, int64_t height, Rng& rng) {
  const double area = static_cast<double>(width) * static_cast<double>(height);
  const double log_min_ratio = std::log(kMinRatio);
  const double log_max_ratio = std::log(kMaxRatio);
  for (int attempt = 0; attempt < kCropAttempts; ++attempt) {
    const double target_area = area * rng.Uniform(kMinArea, 1.0);
    const double ratio = std::exp(rng.Uniform(log_min_ratio, log_max_ratio));
    const int64_t w = std::llround(std::sqrt(target_area * ratio));
    const int64_t h = std::llround(std::sqrt(target_area / ratio));
    if (w > 0 && h > 0 && w <= width && h <= height) {
      const int64_t top = rng.UniformInt(0, height - h);
      const int64_t left = rng.UniformInt(0, width - w);
      return {static_cast<double>(left), static_cast<double>(top), static_cast<double>(w),
              static_cast<double>(h)};
    }
  }
  const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
  int64_t w = width;
  int64_t h = height;
  if (in_ratio < kMinRatio) {
    h = std::llround(static_cast<double>(w) / kMinRatio);
  } else if (in_ratio > kMaxRatio) {
    w = std::llround(static_cast<double>(h) * kMaxRatio);
  }
  return {static_cast<double>((width - w) / 2), static_cast<double>((height - h) / 2),
          static_cast<double>(w), static_cast<double>(h)};
}

CropRegion CenterCropRegion(int64_t width, int64_t height, int64_t crop_size) {
  const int64_t resize = crop_size * 256 / 224;
  const int64_t shorter = std::min(width, height);
  const int64_t longer = std::max(width, height);
  const int64_t resized_longer = resize * longer / shorter;
  const int64_t resized_width = width <= height ? resize : resized_longer;
  const int64_t resized_height = width <= height ? resized_longer : resize;
  const double scale_x = static_cast<double>(width) / static_cast<double>(resized_width);
  const double scale_y = static_cast<double>(height) / static_cast<double>(resized_height);
  // Python's round() (half to even), as torchvision's center_crop: nearbyint in the default mode.
  const double left = std::nearbyint(static_cast<double>(resized_width - crop_size) / 2.0);
  const double top = std::nearbyint(static_cast<double>(resized_height - crop_size) / 2.0);
  return {left * scale_x, top * scale_y, static_cast<double>(crop_size) * scale_x,
          static_cast<double>(crop_size) * scale_y};
}

void ResampleToChw(const uint8_t* rgb, int64_t width, int64_t height, int64_t stride,
                   const CropRegion& region, int64_t out, bool flip,
                   const Normalization& normalization, float* out_chw) {
  const AxisTaps x_taps = ComputeTaps(width, region.x, region.width, out);
  const AxisTaps y_taps = ComputeTaps(height, region.y, region.height, out);
  const int64_t row_begin = y_taps.first.front();
  const int64_t row_end = y_taps.first.back() + y_taps.count.back();

  // Horizontal pass over only the source rows the vertical pass reads: rows x out x 3.
  std::vector<float> rows(static_cast<size_t>((row_end - row_begin) * out * 3));
  for (int64_t y = row_begin; y < row_end; ++y) {
    const uint8_t* src = rgb + y * stride;
    float* dst = &rows[(y - row_begin) * out * 3];
    for (int64_t ox = 0; ox < out; ++ox) {
      const float* w = &x_taps.weights[ox * x_taps.max_taps];
      const uint8_t* px = src + x_taps.first[ox] * 3;
      float r = 0, g = 0, b = 0;
      for (int64_t k = 0; k < x_taps.count[ox]; ++k) {
        r += w[k] * px[3 * k];
        g += w[k] * px[3 * k + 1];
        b += w[k] * px[3 * k + 2];
      }
      const int64_t column = flip ? out - 1 - ox : ox;
      dst[column * 3] = r;
      dst[column * 3 + 1] = g;
      dst[column * 3 + 2] = b;
    }
  }

  // Vertical pass, folding /255, -mean and /std into one multiply-add per channel.
  float gain[3];
  float bias[3];
  for (int c = 0; c < 3; ++c) {
    gain[c] = 1.0f / (255.0f * normalization.std[c]);
    bias[c] = -normalization.mean[c] / normalization.std[c];
  }
  const int64_t plane = out * out;
  for (int64_t oy = 0; oy < out; ++oy) {
    const float* w = &y_taps.weights[oy * y_taps.max_taps];
    const int64_t first = y_taps.first[oy] - row_begin;
    for (int64_t ox = 0; ox < out; ++ox) {
      float sum[3] = {0, 0, 0};
      for (int64_t k = 0; k < y_taps.count[oy]; ++k) {
        const float* px = &rows[((first + k) * out + ox) * 3];
        sum[0] += w[k] * px[0];
        sum[1] += w[k] * px[1];
        sum[2] += w[k] * px[2];
      }
      for (int c = 0; c < 3; ++c) out_chw[c * plane + oy * out + ox] = sum[c] * gain[c] + bias[c];
    }
  }
}

}  // namespace gradflow::runtime::data
