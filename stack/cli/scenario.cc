// `shunt scenario ...` and `shunt dashboard ...`: hand over to the Python package
// (scenarios/cli.py) by exec'ing /usr/bin/python3 -m shunt.scenarios with PYTHONPATH pointing at
// the build tree's python folder, found next to this binary: <dir of /proc/self/exe>/../python.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "stack/cli/commands.h"

namespace shunt::cli {
namespace {

constexpr const char* kPython = "/usr/bin/python3";

bool is_dir(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// <dir of this executable>/../python, or "" with a message.
std::string python_dir(std::string& error) {
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    error = std::string("cannot find this program's directory: ") + std::strerror(errno);
    return "";
  }
  std::string dir(self, size_t(n));
  dir = dir.substr(0, dir.rfind('/'));
  std::string py = dir + "/../python";
  if (!is_dir(py + "/shunt/scenarios")) {
    error = "the Python package is missing: no " + py +
            "/shunt/scenarios (configure the build tree with CMake: it links the package there)";
    return "";
  }
  char real[4096];
  if (::realpath(py.c_str(), real) != nullptr) py = real;
  return py;
}

}  // namespace

int cmd_python(const char* command, int argc, char** argv) {
  std::string error;
  std::string py = python_dir(error);
  if (py.empty()) {
    std::fprintf(stderr, "shunt: %s: %s\n", command, error.c_str());
    return 1;
  }
  std::string path = py;
  if (const char* old = std::getenv("PYTHONPATH"); old && *old) path += std::string(":") + old;
  ::setenv("PYTHONPATH", path.c_str(), 1);
  std::vector<char*> args;
  args.push_back(const_cast<char*>("python3"));
  args.push_back(const_cast<char*>("-m"));
  args.push_back(const_cast<char*>("shunt.scenarios"));
  args.push_back(const_cast<char*>(command));
  for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
  args.push_back(nullptr);
  ::execv(kPython, args.data());
  std::fprintf(stderr, "shunt: %s: cannot run %s: %s%s\n", command, kPython, std::strerror(errno),
               errno == ENOENT ? " (install python3)" : "");
  return 1;
}

}  // namespace shunt::cli
