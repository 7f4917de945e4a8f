// Placeholder: replaced by the real implementation.
#include "stack/net/ipv6.h"

#include "stack/net/stack.h"

namespace shunt {

Ipv6::Ipv6(Stack& stack) : stack_(stack) {}
Ipv6::~Ipv6() = default;

}  // namespace shunt
namespace shunt {
void Ipv6::on_rx(PacketPtr, const EthRepr&) {}
int Ipv6::output(PacketPtr, const Ipv6Tx&) { return -95; }
}  // namespace shunt
