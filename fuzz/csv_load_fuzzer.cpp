// Fuzzes loading a CSV the way `sluice run` does (transform/load.h): the
// plain read, the guarded read with the sniffed dialect, widening, bad rows.
// Any bytes must give a table or an error, never a crash; and a load that
// succeeds never has fewer rows than DuckDB's own default read of the file.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "config/project.h"
#include "core/hash.h"
#include "transform/load.h"
#include "transform/phases.h"
#include "warehouse/warehouse.h"

namespace {

struct Fixture {
  std::unique_ptr<sluice::Warehouse> warehouse;
  std::unique_ptr<sluice::WarehouseSession> session;
  std::string dir;
  Fixture() {
    sluice::DuckDbOptions options;
    options.memory_limit = "256MB";
    options.threads = 1;
    warehouse = std::move(sluice::OpenDuckDbWarehouse(":memory:", options)).value();
    session = std::move(warehouse->Connect()).value();
    (void)session->Execute("CREATE SCHEMA _sluice; " + sluice::IssueTableDdl());
    dir = "/tmp/sluice-csv-fuzz-" + std::to_string(::getpid());
    (void)std::system(("mkdir -p " + dir).c_str());
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture f;
  // Named by its hash, as the lake names objects: DuckDB may keep what it
  // learnt of a file by its path, and one path for every input made each
  // input meet the last one's (the product never reuses a path for other bytes).
  const std::string sha =
      sluice::Sha256Hex(std::string_view(reinterpret_cast<const char*>(data), size));
  std::string path = f.dir + "/" + sha + ".csv";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  sluice::TableSpec table;
  table.name = "t";
  table.loc = {"sources/t.yaml", 1};
  for (bool skip : {false, true}) {
    sluice::LoadSpec spec;
    spec.table = &table;
    spec.format = "csv";
    spec.options = nlohmann::json::object();
    if (skip) spec.options["bad_rows"] = "skip";
    // The object's real hash: the loader caches what it derives from an
    // object (a transcoded copy) under its hash, as the lake's objects are
    // content-addressed; a fixed one made each input read the last one's cache.
    spec.objects.push_back({path, sha});
    spec.cache_dir = f.dir + "/cache";
    spec.targets.physical = "loaded";
    spec.targets.asset = "t";
    spec.targets.version = "v";
    auto loaded = sluice::LoadSourceTable(
        *f.session, spec, [&](const std::string& sql) { return f.session->Execute(sql); });
    if (loaded.ok() && !skip) {
      auto engine =
          f.session->Query("SELECT count(*) FROM (SELECT * FROM read_csv('" + path + "'))");
      auto ours = f.session->Query("SELECT count(*) FROM loaded");
      if (engine.ok() && ours.ok() && ours->ScalarInt() < engine->ScalarInt()) std::abort();
    }
    (void)f.session->Execute("DROP TABLE IF EXISTS loaded");
  }
  std::remove(path.c_str());
  return 0;
}
