#include "config/project.h"

namespace sluice {

std::string SourceLoc::ToString() const {
  if (line > 0) return file + ":" + std::to_string(line);
  return file;
}

std::string ConfigError::ToString() const {
  std::string where = loc.ToString();
  return where.empty() ? message : where + ": " + message;
}

}  // namespace sluice
