// Placeholder: replaced by the real implementation.
#include "stack/net/igmp.h"

#include "stack/net/stack.h"

namespace shunt {

Igmp::Igmp(Stack& stack) : stack_(stack) {}
Igmp::~Igmp() = default;

}  // namespace shunt
