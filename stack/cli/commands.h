// The `shunt` subcommands that live in their own files (main.cc dispatches to them).
#pragma once

namespace shunt::cli {

// `shunt run [options] [--] PROGRAM [ARGS...]` (run.cc): argv[0] is "run".
int cmd_run(int argc, char** argv);
// `shunt stat [options]` (stat.cc): argv[0] is "stat".
int cmd_stat(int argc, char** argv);
// `shunt scenario ...` / `shunt dashboard ...` (scenario.cc): exec /usr/bin/python3 -m
// shunt.scenarios COMMAND ARGS... with the build tree's python folder on PYTHONPATH. argv[0] is
// the command.
int cmd_python(const char* command, int argc, char** argv);

}  // namespace shunt::cli
