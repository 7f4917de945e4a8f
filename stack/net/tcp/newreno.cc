#include "stack/net/tcp/newreno.h"

namespace shunt {

void NewReno::init(uint32_t mss, Nanos) { mss_ = mss; cwnd_ = initial_window(mss); ssthresh_ = kInfiniteSsthresh; }
void NewReno::set_mss(uint32_t mss) { mss_ = mss; }
void NewReno::on_ack(uint32_t, uint64_t, Nanos, Nanos, bool) {}
void NewReno::on_loss(uint64_t in_flight, Nanos) { ssthresh_ = half_flight(in_flight); cwnd_ = ssthresh_; }
void NewReno::on_recovery_end(Nanos) { cwnd_ = ssthresh_; }
void NewReno::on_rto(uint64_t in_flight, Nanos) { ssthresh_ = half_flight(in_flight); cwnd_ = mss_; }
void NewReno::on_idle_restart(Nanos) {}
uint32_t NewReno::slow_start(uint32_t) { return 0; }
uint64_t NewReno::half_flight(uint64_t in_flight) const { return in_flight / 2 > 2ull * mss_ ? in_flight / 2 : 2ull * mss_; }

}  // namespace shunt
