// One function per command (each in its own cmd_*.cpp); cli.cpp holds the
// table that wires them to CLI11 subcommands. Each returns the exit code.
#pragma once

#include "cli/common.h"

namespace sluice {

int CmdInit(const GlobalOptions& global, const CommandArgs& args);
int CmdValidate(const GlobalOptions& global, const CommandArgs& args);
int CmdPlan(const GlobalOptions& global, const CommandArgs& args);
int CmdRun(const GlobalOptions& global, const CommandArgs& args);
int CmdTest(const GlobalOptions& global, const CommandArgs& args);
int CmdQuery(const GlobalOptions& global, const CommandArgs& args);
int CmdRuns(const GlobalOptions& global, const CommandArgs& args);
int CmdLogs(const GlobalOptions& global, const CommandArgs& args);
int CmdCancel(const GlobalOptions& global, const CommandArgs& args);
int CmdBackfill(const GlobalOptions& global, const CommandArgs& args);
int CmdLineage(const GlobalOptions& global, const CommandArgs& args);
int CmdCheck(const GlobalOptions& global, const CommandArgs& args);
int CmdRollback(const GlobalOptions& global, const CommandArgs& args);
int CmdExport(const GlobalOptions& global, const CommandArgs& args);
int CmdServe(const GlobalOptions& global, const CommandArgs& args);
int CmdSchedules(const GlobalOptions& global, const CommandArgs& args);
int CmdPause(const GlobalOptions& global, const CommandArgs& args);
int CmdResume(const GlobalOptions& global, const CommandArgs& args);

}  // namespace sluice
