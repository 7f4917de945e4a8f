// Placeholder: replaced by the real implementation.
#include "stack/net/icmp.h"

#include "stack/net/stack.h"

namespace shunt {

Icmp::Icmp(Stack& stack) : stack_(stack) {}
Icmp::~Icmp() = default;

}  // namespace shunt
