// Placeholder: replaced by the real implementation.
#include "stack/net/ndp.h"

#include "stack/net/stack.h"

namespace shunt {

Ndp::Ndp(Stack& stack) : stack_(stack) {}
Ndp::~Ndp() = default;

}  // namespace shunt
namespace shunt {
void Ndp::start_dad(const Ipv6Addr&) {}
}  // namespace shunt
