// Placeholder: replaced by the real implementation.
#include "stack/net/ipv4.h"

#include "stack/net/stack.h"

namespace shunt {

Ipv4::Ipv4(Stack& stack) : stack_(stack) {}
Ipv4::~Ipv4() = default;

}  // namespace shunt
namespace shunt {
void Ipv4::on_rx(PacketPtr, const EthRepr&) {}
int Ipv4::output(PacketPtr, const Ipv4Tx&) { return -95; }
}  // namespace shunt
