// Placeholder: replaced by the real implementation.
#include "stack/net/icmp6.h"

#include "stack/net/stack.h"

namespace shunt {

Icmp6::Icmp6(Stack& stack) : stack_(stack) {}
Icmp6::~Icmp6() = default;

}  // namespace shunt
