// A fixture base for unit tests of code that runs SQL (checks, publication,
// column phases): an in-memory DuckDB warehouse and one session on it.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "warehouse/warehouse.h"

namespace sluice {

class MemoryWarehouseTest : public ::testing::Test {
 protected:
  // Opens warehouse_ and session_; call from SetUp, then check HasFatalFailure().
  void OpenWarehouse(int threads = 1, const std::string& memory_limit = "256MB") {
    DuckDbOptions options;
    options.memory_limit = memory_limit;
    options.threads = threads;
    auto wh = OpenDuckDbWarehouse(":memory:", options);
    ASSERT_TRUE(wh.ok()) << wh.status().ToString();
    warehouse_ = std::move(wh).value();
    auto session = warehouse_->Connect();
    ASSERT_TRUE(session.ok()) << session.status().ToString();
    session_ = std::move(session).value();
  }

  std::unique_ptr<Warehouse> warehouse_;
  std::unique_ptr<WarehouseSession> session_;
};

}  // namespace sluice
