// Alpha-beta cost of the collectives a data-parallel iteration runs, per gradient bucket.
//
// A link moves a message of b bytes in alpha + b / bandwidth seconds. A collective is summarized
// by its critical path: how many message rounds it waits on (steps, each costing alpha) and how
// many bytes cross the busiest link on that path (each costing 1 / bandwidth). Splitting the two
// lets the replay share a link's bandwidth between buckets in flight while latencies overlap.
//
// The algorithms are the ones gradflow's Gloo backend runs (and the paper used):
//   ring              gloo::AllreduceRingChunked: reduce-scatter then allgather around a ring,
//                     2(p-1) steps, each moving 1/p of the bucket: 2(p-1)/p of it in all.
//   halving-doubling  gloo::AllreduceHalvingDoubling: recursive vector halving and distance
//                     doubling, 2 log2 p steps moving 2(p-1)/p of the bucket. For p not a power
//                     of two Gloo splits the ranks into binary blocks (p = 6: a block of 4 and
//                     one of 2); each block reduce-scatters inside itself, the partial results
//                     climb from the smallest block to the largest one hop at a time, come back
//                     down, and each block allgathers: see HalvingDoublingAllreduce.
//   hierarchical      the paper's three phases for several devices per server: reduce to one
//                     device inside the server, allreduce between servers, broadcast inside the
//                     server. Reduce and broadcast are pipelined chains (what NCCL runs):
//                     d-1 steps, the whole bucket through each link.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace gradflow::runtime::project {

struct LinkParams {
  double latency_seconds = 0;   // alpha: per message round
  double bytes_per_second = 0;  // 1 / beta

  // From the command line's units: gigabits per second and microseconds.
  static LinkParams FromGbpsAndMicros(double gbps, double latency_us);
  double gbps() const { return bytes_per_second * 8 / 1e9; }
};

// One collective's critical path.
struct CollectiveCost {
  double steps = 0;           // message rounds waited on, one alpha each
  double critical_bytes = 0;  // bytes through the busiest link on that path
  double sent_bytes = 0;      // the most bytes any one rank sends (what its network port carries)

  double LatencySeconds(const LinkParams& link) const { return steps * link.latency_seconds; }
  double BandwidthSeconds(const LinkParams& link) const {
    return critical_bytes / link.bytes_per_second;
  }
  double Seconds(const LinkParams& link) const {
    return LatencySeconds(link) + BandwidthSeconds(link);
  }
};

enum class AllreduceAlgorithm : int8_t { kRing, kHalvingDoubling };
const char* AllreduceAlgorithmName(AllreduceAlgorithm algorithm);

// How the projection picks an algorithm per bucket: one of them always, or the runtime's own
// rule (`runtime --allreduce-algo auto`: ring from 256 KiB up, halving-doubling below).
enum class AlgorithmChoice : int8_t { kRing, kHalvingDoubling, kAuto };
absl::StatusOr<AlgorithmChoice> ParseAlgorithmChoice(const std::string& text);
inline constexpr int64_t kRuntimeRingMinBytes = int64_t{256} << 10;
AllreduceAlgorithm ChooseAlgorithm(AlgorithmChoice choice, double bucket_bytes);

// `ranks` >= 1 (1 costs nothing); `bytes` >= 0.
CollectiveCost RingAllreduce(int64_t ranks, double bytes);
// Gloo's binary blocks make the critical path depend on alpha against beta: the path that takes
// longest on `link` is returned.
CollectiveCost HalvingDoublingAllreduce(int64_t ranks, double bytes, const LinkParams& link);
CollectiveCost Allreduce(AllreduceAlgorithm algorithm, int64_t ranks, double bytes,
                         const LinkParams& link);
// A pipelined chain inside a server: reduce onto one device, or broadcast from it.
CollectiveCost ChainReduceOrBroadcast(int64_t devices, double bytes);

// The link between the devices of one server.
enum class IntraNodeLink : int8_t { kNvlink, kPcie, kNone };
absl::StatusOr<IntraNodeLink> ParseIntraNodeLink(const std::string& text);
const char* IntraNodeLinkName(IntraNodeLink link);
// The figures assumed per link kind (see bench/README.md, "Scaling projection", for sources).
// kNone has no figures: it only allows one device per server.
LinkParams IntraNodeLinkParams(IntraNodeLink link);

// Which link a phase of a bucket's synchronization uses: each is shared by the buckets in flight.
enum class Resource : int8_t { kIntraNode = 0, kNetwork = 1 };
inline constexpr int kNumResources = 2;

struct Phase {
  Resource resource = Resource::kNetwork;
  double steps = 0;  // message rounds on the critical path
  double latency_seconds = 0;
  double bandwidth_seconds = 0;  // at the full link, alone on it
  double sent_bytes = 0;         // over the server's network port (network phases only)
};

struct Topology {
  int64_t servers = 1;
  int64_t devices_per_server = 1;
  LinkParams network;
  IntraNodeLink intra_node = IntraNodeLink::kNvlink;
  AlgorithmChoice algorithm = AlgorithmChoice::kAuto;
};

// Checks the combination: at least one server and device, a positive network bandwidth, and a
// link when a server has several devices. Errors name the flag.
absl::Status CheckTopology(const Topology& topology);

// The phases synchronizing one bucket of `bytes` across the whole job, in order: intra-node
// reduce, inter-server allreduce, intra-node broadcast (phases that move nothing are left out).
std::vector<Phase> BucketPhases(const Topology& topology, double bytes);

}  // namespace gradflow::runtime::project
