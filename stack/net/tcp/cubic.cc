#include "stack/net/tcp/cubic.h"

namespace shunt {

void Cubic::init(uint32_t mss, Nanos now) { NewReno::init(mss, now); }
void Cubic::set_mss(uint32_t mss) { NewReno::set_mss(mss); }
void Cubic::on_ack(uint32_t b, uint64_t f, Nanos r, Nanos n, bool a) { NewReno::on_ack(b, f, r, n, a); }
void Cubic::on_loss(uint64_t f, Nanos n) { NewReno::on_loss(f, n); }
void Cubic::on_recovery_end(Nanos n) { NewReno::on_recovery_end(n); }
void Cubic::on_rto(uint64_t f, Nanos n) { NewReno::on_rto(f, n); }
void Cubic::on_idle_restart(Nanos n) { NewReno::on_idle_restart(n); }
double Cubic::w_cubic(double) const { return w_max_; }
void Cubic::start_epoch(Nanos) {}
void Cubic::reduce(uint64_t) {}
uint64_t Cubic::segs_to_bytes(double w) const { return uint64_t(w * mss_); }

}  // namespace shunt
