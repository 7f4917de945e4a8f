// Boost.Test prints the values of failed comparisons: how the verbs tests print addresses.
#pragma once
#include <ostream>

#include "stack/net/addr.h"

namespace shunt {
inline std::ostream& operator<<(std::ostream& os, const MacAddr& m) { return os << m.str(); }
inline std::ostream& operator<<(std::ostream& os, const Ipv6Addr& a) { return os << a.str(); }
}  // namespace shunt
