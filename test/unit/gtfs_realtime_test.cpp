// Tests of the GTFS-realtime decoder (ingest/gtfs_realtime.h): feeds are
// built with the protobuf classes generated from the schema, written as the
// bytes a server would send, read through the decoder's SQL in a real
// in-memory DuckDB; bytes that are not a feed fail with what they look like.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <ingest/proto/gtfs_realtime.pb.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/strings.h"
#include "ingest/decoder.h"
#include "ingest/gtfs_realtime.h"
#include "support/memory_warehouse.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;
namespace rt = sluice::gtfs_rt;

constexpr uint64_t kT = 1767261600;  // 2026-01-01 10:00:00 UTC

rt::FeedMessage Feed(uint64_t at) {
  rt::FeedMessage feed;
  feed.mutable_header()->set_gtfs_realtime_version("2.0");
  feed.mutable_header()->set_timestamp(at);
  return feed;
}

class GtfsRealtimeTest : public MemoryWarehouseTest {
 protected:
  void SetUp() override {
    OpenWarehouse();
    ASSERT_FALSE(HasFatalFailure());
    dir_ = std::filesystem::temp_directory_path() /
           ("sluice-gtfs-rt-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string Write(const std::string& name, const std::string& bytes) {
    std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  // The rows of `entity` read from the files, as "a,b,c" lines joined by ";".
  std::string Read(const std::vector<std::string>& files, const std::string& entity,
                   const std::string& select) {
    Result<const Decoder*> found = FindDecoder("gtfs-rt");
    EXPECT_TRUE(found.ok()) << found.status().ToString();
    if (!found.ok()) return "";
    const Decoder* decoder = *found;
    DecodeRequest req;
    req.format = "gtfs-rt";
    req.options = {{"entity", entity}};
    req.cache_dir = (dir_ / "cache").string();
    if (files.size() == 1) {
      req.path = files[0];
    } else {
      req.paths = files;
    }
    Result<std::string> sql = decoder->TableSql(req);
    EXPECT_TRUE(sql.ok()) << sql.status().ToString();
    if (!sql.ok()) return "";
    auto r = session_->Query("SELECT " + select + " FROM " + *sql + " t");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return "";
    std::vector<std::string> rows;
    for (const auto& row : r->rows) {
      std::vector<std::string> cells;
      for (const auto& c : row) cells.push_back(c.value_or("NULL"));
      rows.push_back(Join(cells, ","));
    }
    return Join(rows, ";");
  }

  std::filesystem::path dir_;
};

TEST_F(GtfsRealtimeTest, VehiclePositionsBecomeRows) {
  rt::FeedMessage feed = Feed(kT);
  rt::FeedEntity* e = feed.add_entity();
  e->set_id("v1");
  rt::VehiclePosition* v = e->mutable_vehicle();
  v->mutable_trip()->set_trip_id("t1");
  v->mutable_trip()->set_route_id("r9");
  v->mutable_trip()->set_direction_id(1);
  v->mutable_vehicle()->set_id("bus-12");
  v->mutable_position()->set_latitude(36.3057f);
  v->mutable_position()->set_longitude(-119.6603f);
  v->mutable_position()->set_speed(8.5f);
  v->set_current_status(1);
  v->set_occupancy_status(42);  // newer than Sluice's list: kept as its number
  v->set_timestamp(kT - 5);
  feed.add_entity()->set_id("v2");  // no payload: not a row
  rt::FeedEntity* minimal = feed.add_entity();
  minimal->set_id("v3");
  minimal->mutable_vehicle()->mutable_vehicle()->set_id("tram-1");
  std::string path = Write("vehicles.pb", feed.SerializeAsString());
  EXPECT_EQ(Read({path}, "vehicle_positions",
                 "feed_timestamp, entity_id, trip_id, route_id, direction_id, vehicle_id, "
                 "latitude, longitude, speed, current_status, occupancy_status, timestamp"),
            "2026-01-01 10:00:00,v1,t1,r9,1,bus-12,36.3057,-119.6603,8.5,STOPPED_AT,42,"
            "2026-01-01 09:59:55;"
            "2026-01-01 10:00:00,v3,NULL,NULL,NULL,tram-1,NULL,NULL,NULL,NULL,NULL,NULL");
  // No trip updates in this feed: an empty table, with its columns.
  EXPECT_EQ(Read({path}, "trip_updates", "count(*)"), "0");
}

TEST_F(GtfsRealtimeTest, TripUpdatesAndTheirStopTimeUpdates) {
  rt::FeedMessage feed = Feed(kT);
  rt::FeedEntity* e = feed.add_entity();
  e->set_id("u1");
  rt::TripUpdate* u = e->mutable_trip_update();
  u->mutable_trip()->set_trip_id("t1");
  u->mutable_trip()->set_schedule_relationship(3);
  u->set_delay(120);
  for (int i = 1; i <= 2; ++i) {
    rt::TripUpdate::StopTimeUpdate* s = u->add_stop_time_update();
    s->set_stop_sequence(i);
    s->set_stop_id("s" + std::to_string(i));
    s->mutable_arrival()->set_delay(60 * i);
    s->mutable_arrival()->set_time(static_cast<int64_t>(kT) + 300 * i);
    if (i == 2) s->set_schedule_relationship(1);
  }
  std::string path = Write("updates.pb", feed.SerializeAsString());
  EXPECT_EQ(
      Read({path}, "trip_updates", "trip_id, schedule_relationship, delay, stop_time_updates"),
      "t1,CANCELED,120,2");
  EXPECT_EQ(Read({path}, "stop_time_updates",
                 "trip_id, stop_sequence, stop_id, arrival_delay, arrival_time, "
                 "schedule_relationship"),
            "t1,1,s1,60,2026-01-01 10:05:00,NULL;t1,2,s2,120,2026-01-01 10:10:00,SKIPPED");
}

TEST_F(GtfsRealtimeTest, AlertsKeepTheirPeriodsAndEntities) {
  rt::FeedMessage feed = Feed(kT);
  rt::FeedEntity* e = feed.add_entity();
  e->set_id("a1");
  rt::Alert* a = e->mutable_alert();
  a->set_cause(9);
  a->set_effect(4);
  a->mutable_header_text()->add_translation()->set_text("Detour on route 9");
  rt::TimeRange* p = a->add_active_period();
  p->set_start(kT);
  p->set_end(kT + 3600);
  a->add_informed_entity()->set_route_id("r9");
  a->add_informed_entity()->set_stop_id("s1");
  std::string path = Write("alerts.pb", feed.SerializeAsString());
  EXPECT_EQ(Read({path}, "alerts",
                 "cause, effect, header_text, len(active_periods), active_periods[1].\"end\", "
                 "informed_entities[1].route_id, informed_entities[2].stop_id"),
            "MAINTENANCE,DETOUR,Detour on route 9,1,2026-01-01 11:00:00,r9,s1");
}

TEST_F(GtfsRealtimeTest, ManyPollsAreReadInOneScan) {
  std::vector<std::string> files;
  for (int i = 0; i < 3; ++i) {
    rt::FeedMessage feed = Feed(kT + 20 * i);
    rt::FeedEntity* e = feed.add_entity();
    e->set_id("v1");
    e->mutable_vehicle()->mutable_position()->set_latitude(36.0f + static_cast<float>(i));
    e->mutable_vehicle()->mutable_position()->set_longitude(-119.0f);
    files.push_back(Write("poll" + std::to_string(i) + ".pb", feed.SerializeAsString()));
  }
  EXPECT_EQ(Read(files, "vehicle_positions",
                 "count(*), min(feed_timestamp), max(feed_timestamp), sum(latitude)"),
            "3,2026-01-01 10:00:00,2026-01-01 10:00:40,111.0");
}

TEST_F(GtfsRealtimeTest, BytesThatAreNotAFeedSayWhatTheyLookLike) {
  Result<std::string> html =
      GtfsRealtimeToNdjson("<!doctype html><html><body>Maintenance</body></html>", "alerts");
  ASSERT_FALSE(html.ok());
  EXPECT_THAT(html.status().message(), HasSubstr("not a GTFS-realtime feed"));
  EXPECT_THAT(html.status().message(), HasSubstr("starts like an HTML"));
  Result<std::string> json = GtfsRealtimeToNdjson("{\"entity\": []}", "alerts");
  ASSERT_FALSE(json.ok());
  EXPECT_THAT(json.status().message(), HasSubstr("starts like JSON"));
  std::string bytes = Feed(kT).SerializeAsString();
  Result<std::string> cut = GtfsRealtimeToNdjson(bytes.substr(0, bytes.size() - 3), "alerts");
  ASSERT_FALSE(cut.ok());
  EXPECT_THAT(cut.status().message(), HasSubstr("do not parse as a protobuf FeedMessage"));
  Result<std::string> unknown = GtfsRealtimeColumns("positions");
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.status().message(),
              HasSubstr("unknown entity 'positions' with options: {entity: ...}, one of "
                        "vehicle_positions, trip_updates, stop_time_updates, alerts"));
  // An empty body is no feed (a feed always has its header).
  Result<std::string> empty = GtfsRealtimeToNdjson("", "alerts");
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(empty.status().message(), HasSubstr("the body is empty"));
  // A feed with its header and nothing else is an empty table.
  Result<std::string> quiet = GtfsRealtimeToNdjson(Feed(kT).SerializeAsString(), "alerts");
  ASSERT_TRUE(quiet.ok()) << quiet.status().ToString();
  EXPECT_EQ(*quiet, "");
}

TEST_F(GtfsRealtimeTest, TimesThatAreNoTimesAreNull) {
  rt::FeedMessage feed = Feed(kT);
  rt::FeedEntity* e = feed.add_entity();
  e->set_id("u1");
  rt::TripUpdate* u = e->mutable_trip_update();
  u->mutable_trip()->set_trip_id("t1");
  u->set_timestamp(kT * 1000000);  // microseconds where seconds belong
  rt::TripUpdate::StopTimeUpdate* s = u->add_stop_time_update();
  s->mutable_arrival()->set_time(-1);  // "unknown"
  s->mutable_departure()->set_time(static_cast<int64_t>(kT));
  std::string path = Write("odd.pb", feed.SerializeAsString());
  EXPECT_EQ(Read({path}, "trip_updates", "trip_id, timestamp"), "t1,NULL");
  EXPECT_EQ(Read({path}, "stop_time_updates", "arrival_time, departure_time"),
            "NULL,2026-01-01 10:00:00");
}

}  // namespace
}  // namespace sluice
