// Process helpers for the interop tests: bounded fork/exec with captured output, and cleanup of
// network namespaces that killed runs left behind.
#pragma once
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "stack/core/clock.h"

namespace shunt::test {

inline std::optional<std::string> find_program(const std::string& name) {
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  path += ":/usr/sbin:/sbin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    if (!dir.empty()) {
      std::string full = dir + "/" + name;
      if (access(full.c_str(), X_OK) == 0) return full;
    }
    start = end + 1;
  }
  return std::nullopt;
}

struct ChildResult {
  int status = -1;  // as from waitpid; -1 if it could not run or was killed on timeout
  bool timed_out = false;
  std::string output;  // stdout and stderr together
  bool ok() const { return !timed_out && status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0; }
  int code() const { return status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1; }
};

// A running child whose stdout/stderr go to an unlinked temporary file. Killed if still running
// when destroyed.
class Child {
 public:
  // Runs argv[0] (a full path) with the rest as arguments.
  explicit Child(const std::vector<std::string>& argv) {
    out_ = output_file();
    pid_ = fork();
    if (pid_ == 0) {
      if (out_ >= 0) {
        dup2(out_, STDOUT_FILENO);
        dup2(out_, STDERR_FILENO);
      }
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  // Runs `body` in a forked child; its return value is the exit status. The child kills itself
  // after `alarm_s` seconds, so it never outlives a stuck parent for long.
  Child(const std::function<int()>& body, unsigned alarm_s = 30) {
    out_ = output_file();
    std::cout.flush();
    std::fflush(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      if (out_ >= 0) {
        dup2(out_, STDOUT_FILENO);
        dup2(out_, STDERR_FILENO);
      }
      alarm(alarm_s);
      int rc = body();
      std::fflush(nullptr);
      _exit(rc);
    }
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (file_) std::fclose(file_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  bool started() const { return pid_ > 0; }
  // Reaps the child if it has exited; true then.
  bool poll_exit() {
    if (reaped_ || pid_ <= 0) return true;
    int st = 0;
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      result_.status = st;
      return true;
    }
    return false;
  }
  // It has exited, and not with status 0.
  bool failed() { return poll_exit() && pid_ > 0 && !result_.timed_out && !(WIFEXITED(result_.status) && WEXITSTATUS(result_.status) == 0); }
  void kill_now() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      reaped_ = true;
      result_.timed_out = true;
    }
  }
  ChildResult result() {
    if (out_ >= 0) {
      lseek(out_, 0, SEEK_SET);
      char buf[4096];
      ssize_t n;
      result_.output.clear();
      while ((n = read(out_, buf, sizeof buf)) > 0) result_.output.append(buf, size_t(n));
    }
    return result_;
  }

 private:
  int output_file() {
    file_ = std::tmpfile();
    return file_ ? fileno(file_) : -1;
  }

  FILE* file_ = nullptr;
  pid_t pid_ = -1;
  int out_ = -1;
  bool reaped_ = false;
  ChildResult result_;
};

// Waits up to `limit` for `c` to exit (no stack to drive meanwhile); kills it, by its pid, if
// it overstays. True if it exited by itself.
inline bool wait_for(Child& c, Nanos limit) {
  MonotonicClock clock;
  const Nanos end = clock.now() + limit;
  while (!c.poll_exit()) {
    if (clock.now() > end) {
      c.kill_now();
      return false;
    }
    usleep(1000);
  }
  return true;
}

// Runs a command to completion (no stack to drive meanwhile).
inline ChildResult run(const std::vector<std::string>& argv, Nanos limit = 10 * kSecond) {
  Child c(argv);
  if (!c.started()) return {};
  wait_for(c, limit);
  return c.result();
}

inline std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& a : v) s += (s.empty() ? "" : " ") + a;
  return s;
}

// Removes namespaces that earlier runs of a test left behind (the run was killed): their
// names end in the pid of a process that no longer exists.
inline void remove_stale_namespaces(const std::string& ip, const char* prefix) {
  DIR* d = opendir("/run/netns");
  if (!d) return;
  std::vector<std::string> stale;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind(prefix, 0) != 0) continue;
    std::string pid = name.substr(std::strlen(prefix));
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    if (access(("/proc/" + pid).c_str(), F_OK) != 0) stale.push_back(name);
  }
  closedir(d);
  for (const auto& name : stale) run({ip, "netns", "delete", name});
}

}  // namespace shunt::test
