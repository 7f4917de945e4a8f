// Placeholder: replaced by the real implementation.
#include "stack/net/udp.h"

#include "stack/net/stack.h"

namespace shunt {

Udp::Udp(Stack& stack) : stack_(stack) {}
Udp::~Udp() = default;

}  // namespace shunt
