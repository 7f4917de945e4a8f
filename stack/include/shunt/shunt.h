// Shunt's public header: what a program may include to talk to the preload library. Everything
// here also works when the program runs without libshunt.so (the calls then report "not
// offloaded"), so a program can ship with it unconditionally.
#pragma once
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

// Per-socket opt-out and opt-in: setsockopt(fd, SOL_SHUNT, SO_SHUNT_OFFLOAD, &v, sizeof(int)).
// v = 0 before bind/connect keeps the socket on the kernel for good; v = 1 asks for offload even
// when SHUNT_OFFLOAD=0 (rules and routes still apply). After the socket has been placed, the
// call fails with EISCONN. getsockopt with the same names answers 1 when the socket is offloaded.
// Without libshunt.so the kernel answers ENOPROTOOPT.
#define SOL_SHUNT 0x5348
#define SO_SHUNT_OFFLOAD 1

// Helpers over the option: 0 on success, -1 with errno set.
static inline int shunt_set_offload(int fd, int on) {
  return setsockopt(fd, SOL_SHUNT, SO_SHUNT_OFFLOAD, &on, sizeof on);
}
// 1: the socket runs on Shunt; 0: on the kernel (or no libshunt.so).
static inline int shunt_is_offloaded(int fd) {
  int v = 0;
  socklen_t len = sizeof v;
  if (getsockopt(fd, SOL_SHUNT, SO_SHUNT_OFFLOAD, &v, &len) != 0) return 0;
  return v;
}

#ifdef __cplusplus
}
#endif
