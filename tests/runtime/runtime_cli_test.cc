// The `runtime` command as a user runs it: real processes, real files, real data.
#include <filesystem>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/train/checkpoint.h"
#include "runtime/trainer/train_device.h"
#include "tests/runtime_data/test_files.h"
#include "tests/support/subprocess.h"

namespace gradflow::runtime {
namespace {

using ::gradflow::testing::ProcessResult;
using ::gradflow::testing::RunProcess;
using ::testing::HasSubstr;
namespace fs = std::filesystem;
namespace data_testing = ::gradflow::runtime::data::testing;

ProcessResult Runtime(std::vector<std::string> args) { return RunProcess(RUNTIME_PATH, args); }

// A graph compiled by the real modelc into a fresh directory.
std::string Compile(const std::string& dir, const std::string& model,
                    std::vector<std::string> options = {}) {
  const std::string path = dir + "/" + model + ".fb";
  std::vector<std::string> args = {model, "-o", path};
  args.insert(args.end(), options.begin(), options.end());
  const ProcessResult r = RunProcess(MODELC_PATH, args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return path;
}

void ExpectCleanFailure(const ProcessResult& r, int code, const std::string& message) {
  EXPECT_FALSE(r.signaled) << "killed by signal " << r.signal << "\n" << r.err;
  EXPECT_EQ(r.exit_code, code) << r.err;
  EXPECT_THAT(r.err, HasSubstr(message));
}

TEST(RuntimeCliTest, HelpDocumentsEveryFlagWithItsDefault) {
  const ProcessResult r = Runtime({"--help"});
  ASSERT_EQ(r.exit_code, 0);
  for (const char* flag : {"--graph", "--data", "--batch N", "--epochs N", "--threads N", "--lr X",
                           "--warmup KIND", "--[no-]nesterov", "--checkpoint-dir", "--resume",
                           "--eval-every"}) {
    EXPECT_THAT(r.out, HasSubstr(flag));
  }
  EXPECT_THAT(r.out, HasSubstr("[0.9]"));    // momentum
  EXPECT_THAT(r.out, HasSubstr("[0.0001]"));  // weight decay
}

TEST(RuntimeCliTest, UsageErrorsNameTheFlag) {
  ExpectCleanFailure(Runtime({"--grpah", "x.fb"}), 2, "unknown flag --grpah");
  ExpectCleanFailure(Runtime({"--data", "synthetic"}), 2, "--graph is required");
  ExpectCleanFailure(Runtime({"--graph", "x.fb", "--batch", "0"}), 2, "--batch must be at least 1");
  ExpectCleanFailure(Runtime({"--graph", "x.fb", "--lr", "fast"}), 2, "--lr: 'fast' is not");
  ExpectCleanFailure(Runtime({"--graph", "x.fb", "--warmup", "slow"}), 2, "--warmup");
  ExpectCleanFailure(Runtime({"--graph"}), 2, "--graph needs a value");
  ExpectCleanFailure(Runtime({"--graph", "x.fb", "--device", "gpu"}), 2,
                     "--device: expected auto, cpu or cuda, got 'gpu'");
  ExpectCleanFailure(Runtime({"--graph", "x.fb", "--stage-ahead", "always"}), 2,
                     "--stage-ahead: expected auto, on or off, got 'always'");
  ExpectCleanFailure(Runtime({"--graph", "x.fb", "--gpu-collectives", "mpi"}), 2,
                     "--gpu-collectives: expected auto, nccl or gloo, got 'mpi'");
}

TEST(RuntimeCliTest, CudaDeviceWithoutAGpuFailsCleanlyAndAutoTrainsOnTheCpu) {
  if (UsableGpus() > 0) GTEST_SKIP() << "this machine has a GPU (tests/cuda cover it)";
  const std::string dir = data_testing::FreshTempDir("runtime-device");
  const std::string graph = Compile(dir, "fmnist-cnn");
  const std::string checkpoints = dir + "/checkpoints";
  const ProcessResult cuda = Runtime({"--graph", graph, "--device", "cuda", "--iters", "2",
                                      "--checkpoint-dir", checkpoints});
  ExpectCleanFailure(cuda, 1, "--device cuda: ");
  EXPECT_FALSE(fs::exists(checkpoints)) << "nothing is written by a run that cannot start";
  const ProcessResult automatic =
      Runtime({"--graph", graph, "--device", "auto", "--iters", "2", "--threads", "1"});
  ASSERT_EQ(automatic.exit_code, 0) << automatic.err;
  EXPECT_THAT(automatic.out, HasSubstr("cpu, 1 thread,"));
}

TEST(RuntimeCliTest, BadGraphOrDataFailsNamingTheCulprit) {
  const std::string dir = data_testing::FreshTempDir("runtime-bad-input");
  ExpectCleanFailure(Runtime({"--graph", dir + "/missing.fb"}), 1, dir + "/missing.fb");
  const std::string junk = dir + "/junk.fb";
  data_testing::WriteBytes(junk, std::vector<uint8_t>(100, 42));
  ExpectCleanFailure(Runtime({"--graph", junk}), 1, junk);
  const std::string resnet = Compile(dir, "resnet-fmnist", {"--channels", "3", "--image-size", "32"});
  ExpectCleanFailure(Runtime({"--graph", resnet, "--data", "fashion-mnist:" + dir + "/none"}), 1,
                     dir + "/none");
  ExpectCleanFailure(Runtime({"--graph", resnet, "--data", "cifar"}), 1, "cifar");
}

TEST(RuntimeCliTest, TrainsOnSyntheticDataAndReportsASummary) {
  const std::string dir = data_testing::FreshTempDir("runtime-synthetic");
  const std::string graph = Compile(dir, "fmnist-cnn");
  const ProcessResult r = Runtime({"--graph", graph, "--data", "synthetic:64,16", "--batch", "8",
                                   "--epochs", "1", "--iters", "5", "--threads", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_THAT(r.out, HasSubstr("iter 5/5"));
  EXPECT_THAT(r.out, HasSubstr("eval after iteration 5"));
  EXPECT_THAT(r.out, HasSubstr("done: 5 iterations"));
}

// The losses of a run's progress lines ("epoch 1/3  iter 2/9  loss 2.3026  ...").
std::vector<double> Losses(const std::string& out) {
  std::vector<double> losses;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    const size_t at = line.find("  loss ");
    if (line.starts_with("epoch ") && at != std::string::npos) {
      losses.push_back(std::stod(line.substr(at + 7)));
    }
  }
  return losses;
}

// A few epochs over a small synthetic set: the network memorizes it, so the loss must fall.
void ExpectLossFalls(const std::string& model, std::vector<std::string> model_options,
                     const std::string& batch, const std::string& iters) {
  const std::string dir = data_testing::FreshTempDir("runtime-loss-" + model);
  const std::string graph = Compile(dir, model, model_options);
  const ProcessResult r = Runtime({"--graph", graph, "--data", "synthetic:16,4", "--batch", batch,
                                   "--epochs", "100", "--iters", iters, "--threads", "2",
                                   "--warmup", "none", "--lr", "0.2", "--log-every", "1",
                                   "--eval-every", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  const std::vector<double> losses = Losses(r.out);
  ASSERT_GE(losses.size(), 6u) << r.out;
  const double first = (losses[0] + losses[1]) / 2;
  const double last = (losses[losses.size() - 1] + losses[losses.size() - 2]) / 2;
  EXPECT_LT(last, 0.7 * first) << r.out;
}

TEST(RuntimeCliTest, LossFallsOnResNet18WithSyntheticData) {
  ExpectLossFalls("resnet18", {"--image-size", "32", "--classes", "10"}, "8", "16");
}

TEST(RuntimeCliTest, LossFallsOnResNet50WithSyntheticData) {
  ExpectLossFalls("resnet50", {"--image-size", "64", "--classes", "10"}, "4", "12");
}

std::vector<std::string> TrainArgs(const std::string& graph, int64_t iters) {
  return {"--graph", graph, "--data", "synthetic:256,16", "--batch", "8", "--epochs", "2",
          "--iters", std::to_string(iters), "--threads", "2", "--seed", "7", "--eval-every", "0"};
}

TEST(RuntimeCliTest, ResumeContinuesBitIdentically) {
  const std::string dir = data_testing::FreshTempDir("runtime-resume");
  const std::string graph = Compile(dir, "resnet-fmnist");
  const std::string straight = dir + "/straight";
  const std::string split = dir + "/split";
  auto with = [](std::vector<std::string> args, std::vector<std::string> more) {
    args.insert(args.end(), more.begin(), more.end());
    return args;
  };
  // k iterations, checkpoint, k more after --resume, against 2k straight ones.
  ProcessResult r = Runtime(with(TrainArgs(graph, 12), {"--checkpoint-dir", straight,
                                                         "--checkpoint-every", "6",
                                                         "--stage-ahead", "on"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Runtime(with(TrainArgs(graph, 6), {"--checkpoint-dir", split}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Runtime(with(TrainArgs(graph, 12), {"--checkpoint-dir", split, "--resume", split}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("resumed from"));

  absl::StatusOr<Checkpoint> a = ReadCheckpoint(straight + "/ckpt-12.gfck");
  absl::StatusOr<Checkpoint> b = ReadCheckpoint(split + "/ckpt-12.gfck");
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(a->parameters.size(), b->parameters.size());
  EXPECT_EQ(0, std::memcmp(a->parameters.data(), b->parameters.data(),
                           a->parameters.size() * sizeof(float)))
      << "parameters differ after resume";
  EXPECT_EQ(0, std::memcmp(a->momentum.data(), b->momentum.data(),
                           a->momentum.size() * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(a->bn_state.data(), b->bn_state.data(),
                           a->bn_state.size() * sizeof(float)));

  // The straight run's checkpoint at 6 was written while batch 7 had already been fetched ahead
  // (and staged on the device): resuming from it must train on batch 7, not skip it.
  const std::string midrun = dir + "/midrun";
  fs::create_directories(midrun);
  fs::copy_file(straight + "/ckpt-6.gfck", midrun + "/ckpt-6.gfck");
  r = Runtime(with(TrainArgs(graph, 12),
                   {"--checkpoint-dir", midrun, "--resume", midrun, "--stage-ahead", "on"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  absl::StatusOr<Checkpoint> c = ReadCheckpoint(midrun + "/ckpt-12.gfck");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(a->parameters.size(), c->parameters.size());
  EXPECT_EQ(0, std::memcmp(a->parameters.data(), c->parameters.data(),
                           a->parameters.size() * sizeof(float)))
      << "parameters differ after resuming from a mid-run checkpoint";
}

TEST(RuntimeCliTest, CorruptCheckpointIsRefusedWithItsName) {
  const std::string dir = data_testing::FreshTempDir("runtime-corrupt");
  const std::string graph = Compile(dir, "fmnist-cnn");
  const std::string ckpt = dir + "/ckpt";
  ProcessResult r = Runtime({"--graph", graph, "--data", "synthetic:64,16", "--batch", "8",
                             "--epochs", "1", "--iters", "2", "--checkpoint-dir", ckpt});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string file = ckpt + "/ckpt-2.gfck";
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x5a');
  }
  r = Runtime({"--graph", graph, "--data", "synthetic:64,16", "--batch", "8", "--epochs", "1",
               "--iters", "4", "--resume", ckpt});
  ExpectCleanFailure(r, 1, "ckpt-2.gfck");
}

// One RGB image per call with a class-dependent colour, so the classes are learnable.
void WriteImage(const std::string& path, int w, int h, uint8_t shade) {
  data_testing::WriteBytes(path, data_testing::EncodeSolidJpeg(w, h, {shade, uint8_t(255 - shade), 64}));
}

TEST(RuntimeCliTest, TrainsOnAnImageFolderOfRealJpegsSkippingACorruptOne) {
  const std::string dir = data_testing::FreshTempDir("runtime-imagefolder");
  for (const char* split : {"train", "val"}) {
    for (int c = 0; c < 2; ++c) {
      const std::string folder = dir + "/images/" + split + "/class" + std::to_string(c);
      fs::create_directories(folder);
      for (int i = 0; i < 4; ++i) {
        WriteImage(folder + "/img" + std::to_string(i) + ".jpg", 40 + 7 * i, 36 + 3 * i,
                   static_cast<uint8_t>(40 + 170 * c));
      }
    }
  }
  std::vector<uint8_t> garbage(3000);
  std::mt19937 rng(1);
  for (uint8_t& b : garbage) b = static_cast<uint8_t>(rng());
  data_testing::WriteBytes(dir + "/images/train/class1/broken.jpg", garbage);

  const std::string graph =
      Compile(dir, "resnet-fmnist", {"--channels", "3", "--image-size", "32", "--classes", "2"});
  const ProcessResult r =
      Runtime({"--graph", graph, "--data", "imagefolder:" + dir + "/images", "--batch", "4",
               "--epochs", "2", "--threads", "2", "--warmup", "none"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_THAT(r.err, HasSubstr("broken.jpg"));
  EXPECT_THAT(r.out, HasSubstr("unreadable examples were skipped"));
  EXPECT_THAT(r.out, HasSubstr("on 8 images"));  // the whole val split was evaluated
}

}  // namespace
}  // namespace gradflow::runtime
