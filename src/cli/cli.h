// The command-line front end: parses arguments, turns each command into a
// request to the engine API (in-process, or to the owner over its socket),
// and renders the answer as text or JSON.
#pragma once

namespace sluice {

// Returns the process exit code: 0 ok, 1 something failed, 2 usage or project error.
int RunCli(int argc, char** argv);

}  // namespace sluice
