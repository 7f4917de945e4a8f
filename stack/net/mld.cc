// Placeholder: replaced by the real implementation.
#include "stack/net/mld.h"

#include "stack/net/stack.h"

namespace shunt {

Mld::Mld(Stack& stack) : stack_(stack) {}
Mld::~Mld() = default;

}  // namespace shunt
namespace shunt {
void Mld::join(const Ipv6Addr&) {}
}  // namespace shunt
