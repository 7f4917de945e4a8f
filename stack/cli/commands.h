// The `shunt` subcommands that live in their own files (main.cc dispatches to them).
#pragma once

namespace shunt::cli {

// `shunt run [options] [--] PROGRAM [ARGS...]` (run.cc): argv[0] is "run".
int cmd_run(int argc, char** argv);
// `shunt stat [options]` (stat.cc): argv[0] is "stat".
int cmd_stat(int argc, char** argv);

}  // namespace shunt::cli
