// A library whose constructor uses sockets before libshunt.so's constructor has run: with
// LD_PRELOAD="libshunt.so libpreload_early.so" the loader initialises this one first, while
// socket() and friends already resolve to libshunt.so. The calls must work, with libc's errno.
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace {

void say(const char* s) { (void)!write(STDERR_FILENO, s, strlen(s)); }

__attribute__((constructor)) void early_init() {
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) {
    say("early: socket() failed\n");
    _exit(3);
  }
  errno = 0;
  if (fcntl(fd, F_GETFD) < 0 || close(fd) != 0 || errno != 0) {
    say("early: fcntl/close failed\n");
    _exit(3);
  }
  errno = 0;
  if (close(-1) != -1 || errno != EBADF) {
    say("early: close(-1) did not fail with EBADF\n");
    _exit(4);
  }
  say("early: sockets work before libshunt is initialised\n");
}

}  // namespace
