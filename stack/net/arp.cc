// Placeholder: replaced by the real implementation.
#include "stack/net/arp.h"

#include "stack/net/stack.h"

namespace shunt {

Arp::Arp(Stack& stack) : stack_(stack) {}
Arp::~Arp() = default;

}  // namespace shunt
namespace shunt {
void Arp::on_rx(PacketPtr, const EthRepr&) {}
void Arp::announce(Ipv4Addr) {}
void Arp::send_ipv4(PacketPtr, Ipv4Addr) {}
std::optional<MacAddr> Arp::lookup(Ipv4Addr) const { return std::nullopt; }
}  // namespace shunt
