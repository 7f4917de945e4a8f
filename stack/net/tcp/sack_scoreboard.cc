#include "stack/net/tcp/sack_scoreboard.h"

namespace shunt {

void SackScoreboard::reset(uint32_t snd_una) { *this = SackScoreboard(); snd_una_ = snd_una; }
SackScoreboard::Update SackScoreboard::on_ack(uint32_t, const SackBlock*, size_t, uint32_t) { return {}; }
bool SackScoreboard::is_sacked(uint32_t) const { return false; }
bool SackScoreboard::is_lost(uint32_t, uint32_t, int) const { return false; }
uint64_t SackScoreboard::pipe(uint32_t snd_una, uint32_t snd_nxt, uint32_t, uint32_t, int) const { return snd_nxt - snd_una; }
bool SackScoreboard::next_retransmit(uint32_t, uint32_t, uint32_t, uint32_t, bool, uint32_t&, uint32_t&, int) const { return false; }
uint32_t SackScoreboard::highest_sacked() const { return snd_una_; }

}  // namespace shunt
