// Schema-wide database sources (`database: {schema: NAME}`): the tables a
// schema had when it was last listed, kept per environment in
// <state_dir>/catalog/<source>.json, and the source's tables made from them
// — each its own asset, named after the table, keyed on its primary key.
// Config is read without connecting anywhere, so the listing is what
// `sluice run` and `plan` refresh before they load the project: a table
// created at the source joins the next run.
#pragma once

#include <string>
#include <vector>

#include "config/project.h"

namespace sluice {

std::string CatalogPath(const std::string& state_dir, const std::string& source);

// Lists each schema source's tables now and keeps the listing when it
// changed. A source whose database does not answer keeps its last listing;
// what happened is in `notes` (new tables, gone tables, errors).
void RefreshCatalogs(const Project& project, const std::string& env,
                     std::vector<std::string>* notes);

// Adds to each schema source of `project` the tables its last listing
// found that include:/exclude: let through and tables: does not read
// already. A table that cannot be an asset (a name another has; under
// cdc:, no primary key or a partitioned table) is left out, never an
// error that would stop the rest: RefreshCatalogs says why.
void ExpandSchemaSources(Project* project, const std::string& env);

}  // namespace sluice
