#include "runtime/project/cost_model.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace gradflow::runtime::project {

LinkParams LinkParams::FromGbpsAndMicros(double gbps, double latency_us) {
  return LinkParams{.latency_seconds = latency_us * 1e-6, .bytes_per_second = gbps * 1e9 / 8};
}

const char* AllreduceAlgorithmName(AllreduceAlgorithm algorithm) {
  return algorithm == AllreduceAlgorithm::kRing ? "ring" : "halving-doubling";
}

absl::StatusOr<AlgorithmChoice> ParseAlgorithmChoice(const std::string& text) {
  if (text == "ring") return AlgorithmChoice::kRing;
  if (text == "halving-doubling") return AlgorithmChoice::kHalvingDoubling;
  if (text == "auto") return AlgorithmChoice::kAuto;
  return absl::InvalidArgumentError(
      absl::StrCat("expected ring, halving-doubling or auto, got '", text, "'"));
}

AllreduceAlgorithm ChooseAlgorithm(AlgorithmChoice choice, double bucket_bytes) {
  switch (choice) {
    case AlgorithmChoice::kRing:
      return AllreduceAlgorithm::kRing;
    case AlgorithmChoice::kHalvingDoubling:
      return AllreduceAlgorithm::kHalvingDoubling;
    case AlgorithmChoice::kAuto:
      break;
  }
  return bucket_bytes >= static_cast<double>(kRuntimeRingMinBytes)
             ? AllreduceAlgorithm::kRing
             : AllreduceAlgorithm::kHalvingDoubling;
}

CollectiveCost RingAllreduce(int64_t ranks, double bytes) {
  if (ranks <= 1 || bytes <= 0) return {};
  const double p = static_cast<double>(ranks);
  const double moved = 2 * (p - 1) / p * bytes;
  return {.steps = 2 * (p - 1), .critical_bytes = moved, .sent_bytes = moved};
}

namespace {

// A partial critical path: rounds waited on and bytes through the busiest link.
struct Path {
  double steps = 0;
  double bytes = 0;
  double Seconds(const LinkParams& link) const {
    return steps * link.latency_seconds + bytes / link.bytes_per_second;
  }
};

Path operator+(Path a, Path b) { return {a.steps + b.steps, a.bytes + b.bytes}; }

Path Longer(Path a, Path b, const LinkParams& link) {
  return b.Seconds(link) > a.Seconds(link) ? b : a;
}

}  // namespace

CollectiveCost HalvingDoublingAllreduce(int64_t ranks, double bytes, const LinkParams& link) {
  if (ranks <= 1 || bytes <= 0) return {};
  // Binary blocks, smallest first: the set bits of `ranks`.
  std::vector<double> blocks;
  for (int bit = 0; bit < 63; ++bit) {
    if ((ranks >> bit) & 1) blocks.push_back(std::ldexp(1.0, bit));
  }
  const size_t m = blocks.size() - 1;  // the largest block
  // Reduce-scatter (and, mirrored, allgather) inside a block of B ranks: log2 B rounds, halving
  // the vector each time, so each rank ends with 1/B of it.
  auto within = [bytes](double block) { return Path{std::log2(block), bytes * (1 - 1 / block)}; };
  // done[j]: block j holds its share of the sum over blocks 0..j. A block passes its 1/B share up
  // to the next larger block in one round (to several ranks at once, through its own port).
  std::vector<Path> done(blocks.size());
  done[0] = within(blocks[0]);
  for (size_t j = 1; j <= m; ++j) {
    done[j] = Longer(within(blocks[j]), done[j - 1] + Path{1, bytes / blocks[j - 1]}, link);
  }
  // back[j]: block j got the full sum back from the next larger block (the same bytes, down).
  std::vector<Path> back(blocks.size());
  back[m] = done[m];
  for (size_t j = m; j-- > 0;) back[j] = back[j + 1] + Path{1, bytes / blocks[j]};
  Path total;
  double sent = 0;
  for (size_t j = 0; j <= m; ++j) {
    total = Longer(total, back[j] + within(blocks[j]), link);
    // Reduce-scatter and allgather inside the block, plus its share up and down (the largest
    // block sends nothing up, the smallest nothing down).
    const double share = bytes / blocks[j];
    sent = std::max(sent, 2 * within(blocks[j]).bytes + (j < m ? share : 0) + (j > 0 ? share : 0));
  }
  return {.steps = total.steps, .critical_bytes = total.bytes, .sent_bytes = sent};
}

CollectiveCost Allreduce(AllreduceAlgorithm algorithm, int64_t ranks, double bytes,
                         const LinkParams& link) {
  return algorithm == AllreduceAlgorithm::kRing ? RingAllreduce(ranks, bytes)
                                                : HalvingDoublingAllreduce(ranks, bytes, link);
}

CollectiveCost ChainReduceOrBroadcast(int64_t devices, double bytes) {
  if (devices <= 1 || bytes <= 0) return {};
  return {.steps = static_cast<double>(devices - 1), .critical_bytes = bytes, .sent_bytes = 0};
}

absl::StatusOr<IntraNodeLink> ParseIntraNodeLink(const std::string& text) {
  if (text == "nvlink") return IntraNodeLink::kNvlink;
  if (text == "pcie") return IntraNodeLink::kPcie;
  if (text == "none") return IntraNodeLink::kNone;
  return absl::InvalidArgumentError(
      absl::StrCat("expected nvlink, pcie or none, got '", text, "'"));
}

const char* IntraNodeLinkName(IntraNodeLink link) {
  switch (link) {
    case IntraNodeLink::kNvlink:
      return "nvlink";
    case IntraNodeLink::kPcie:
      return "pcie";
    case IntraNodeLink::kNone:
      break;
  }
  return "none";
}

LinkParams IntraNodeLinkParams(IntraNodeLink link) {
  switch (link) {
    case IntraNodeLink::kNvlink:
      // One NVLink 1.0 link per ring hop: 20 GB/s per direction (Tesla P100 whitepaper, 4 links
      // of 20 GB/s each way per GPU); a few microseconds per NCCL step.
      return {.latency_seconds = 5e-6, .bytes_per_second = 20e9};
    case IntraNodeLink::kPcie:
      // PCIe 3.0 x16: 15.75 GB/s raw per direction, about 12 GB/s achieved by device copies.
      return {.latency_seconds = 10e-6, .bytes_per_second = 12e9};
    case IntraNodeLink::kNone:
      break;
  }
  return {};
}

absl::Status CheckTopology(const Topology& topology) {
  if (topology.servers < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--nodes: every count must be at least 1, got ", topology.servers));
  }
  if (topology.devices_per_server < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--devices-per-node must be at least 1, got ", topology.devices_per_server));
  }
  if (!(topology.network.bytes_per_second > 0) ||
      !std::isfinite(topology.network.bytes_per_second)) {
    return absl::InvalidArgumentError("--link-gbps must be a positive number");
  }
  if (!(topology.network.latency_seconds >= 0) ||
      !std::isfinite(topology.network.latency_seconds)) {
    return absl::InvalidArgumentError("--latency-us must not be negative");
  }
  if (topology.intra_node == IntraNodeLink::kNone && topology.devices_per_server > 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--intra-node none allows one device per node, but --devices-per-node is ",
        topology.devices_per_server, ": devices of a server need a link to sum their gradients"));
  }
  return absl::OkStatus();
}

std::vector<Phase> BucketPhases(const Topology& topology, double bytes) {
  std::vector<Phase> phases;
  if (bytes <= 0) return phases;
  const LinkParams intra = IntraNodeLinkParams(topology.intra_node);
  const CollectiveCost chain = ChainReduceOrBroadcast(topology.devices_per_server, bytes);
  const bool local = chain.steps > 0;
  if (local) {
    phases.push_back({.resource = Resource::kIntraNode,
                      .steps = chain.steps,
                      .latency_seconds = chain.LatencySeconds(intra),
                      .bandwidth_seconds = chain.BandwidthSeconds(intra)});
  }
  if (topology.servers > 1) {
    const CollectiveCost net = Allreduce(ChooseAlgorithm(topology.algorithm, bytes),
                                         topology.servers, bytes, topology.network);
    phases.push_back({.resource = Resource::kNetwork,
                      .steps = net.steps,
                      .latency_seconds = net.LatencySeconds(topology.network),
                      .bandwidth_seconds = net.BandwidthSeconds(topology.network),
                      .sent_bytes = net.sent_bytes});
  }
  if (local) phases.push_back(phases.front());
  return phases;
}

}  // namespace gradflow::runtime::project
