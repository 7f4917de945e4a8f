// The workloads of workloads.h on any Net.
#include "bindings/workloads.h"

namespace shunt::bindings {

double FlowResult::goodput_bps() const {
  if (finished <= started) return 0;
  return double(received) * 8e9 / double(finished - started);
}

double BulkResult::goodput_bps() const {
  if (finished <= started) return 0;
  return double(bytes) * 8e9 / double(finished - started);
}

double ChurnResult::per_virtual_second() const {
  if (finished <= started) return 0;
  return double(closed) * 1e9 / double(finished - started);
}

LatencyResult udp_pingpong(Net& /*net*/, const PingPongSpec& /*spec*/) {
  LatencyResult r;
  r.error = "udp_pingpong: not implemented yet";
  return r;
}

LatencyResult tcp_pingpong(Net& /*net*/, const PingPongSpec& /*spec*/) {
  LatencyResult r;
  r.error = "tcp_pingpong: not implemented yet";
  return r;
}

BulkResult tcp_bulk(Net& /*net*/, const BulkSpec& /*spec*/) {
  BulkResult r;
  r.error = "tcp_bulk: not implemented yet";
  return r;
}

ChurnResult churn(Net& /*net*/, const ChurnSpec& /*spec*/) {
  ChurnResult r;
  r.error = "churn: not implemented yet";
  return r;
}

MulticastResult multicast_fanout(Net& /*net*/, const MulticastSpec& /*spec*/) {
  MulticastResult r;
  r.error = "multicast_fanout: not implemented yet";
  return r;
}

}  // namespace shunt::bindings
