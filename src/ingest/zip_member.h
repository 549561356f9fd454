// Zip archives as sources (`format: zip`, a table per member, as in a GTFS
// feed): a member is extracted once from its raw object into a derived cache
// beside the warehouse, and its table's decoder reads it from there. The raw
// object is never modified; the cache can be deleted at any time.
// Thread-safe: extraction writes a temp file and renames it into place.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace sluice {

// The path of `member` of the zip at zip_path, extracted under
// cache_dir/<zip_sha256>/ (reused when already there). A member not in the
// zip is an error that lists what the zip holds. When no entry has the exact
// name, a unique entry whose base name matches is taken (feeds zipped with a
// folder inside).
Result<std::string> ExtractZipMember(const std::string& zip_path, const std::string& zip_sha256,
                                     const std::string& member, const std::string& cache_dir);

// The names of the files in a zip.
Result<std::vector<std::string>> ListZipMembers(const std::string& zip_path);

}  // namespace sluice
