// NewReno congestion window (RFC 5681, RFC 6582 window parts): slow start with appropriate
// byte counting L = 2*SMSS (RFC 3465 2.2), congestion avoidance by byte counting (RFC 5681 3.1:
// cwnd += SMSS each time a cwnd's worth of bytes has been ACKed, about 1 SMSS per RTT).
#pragma once
#include "stack/net/tcp/congestion.h"

namespace shunt {

class NewReno : public CongestionControl {
 public:
  const char* name() const override { return "newreno"; }
  void init(uint32_t mss, Nanos now) override;
  void set_mss(uint32_t mss) override;
  void on_ack(uint32_t bytes_acked, uint64_t in_flight, Nanos rtt, Nanos now,
              bool app_limited) override;
  void on_loss(uint64_t in_flight, Nanos now) override;
  void on_recovery_end(Nanos now) override;
  void on_rto(uint64_t in_flight, Nanos now) override;
  void on_idle_restart(Nanos now) override;
  bool undo_reduction(Nanos now) override;

 protected:
  // Slow start with ABC; returns the bytes of this ACK not used up because cwnd reached
  // ssthresh (they count toward congestion avoidance).
  uint32_t slow_start(uint32_t bytes_acked);
  // RFC 5681 (4): ssthresh = max(FlightSize/2, 2*SMSS).
  uint64_t half_flight(uint64_t in_flight) const;

  uint64_t ca_bytes_acked_ = 0;  // RFC 3465 bytes_acked in congestion avoidance
  bool rto_pending_ = false;     // an RTO happened and no new data was ACKed since
  // Saved before a reduction, for undo_reduction().
  bool has_prior_ = false;
  uint64_t prior_cwnd_ = 0, prior_ssthresh_ = 0;
  void save_prior() {
    has_prior_ = true;
    prior_cwnd_ = cwnd_;
    prior_ssthresh_ = ssthresh_;
  }
};

}  // namespace shunt
