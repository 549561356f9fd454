// Writes a GTFS-realtime feed for tests, with the protobuf classes generated
// from Sluice's schema:
//   gtfs_rt_feed OUT.pb TIMESTAMP [vehicle:ID:TRIP:LAT:LON]... [alert:ID:ROUTE:TEXT]...
//                [update:ID:TRIP:STOP:DELAY]...
// TIMESTAMP is POSIX seconds (the feed header's).
#include <ingest/proto/gtfs_realtime.pb.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace {

std::vector<std::string> Fields(const std::string& arg) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t colon = arg.find(':', start);
    out.push_back(arg.substr(start, colon - start));
    if (colon == std::string::npos) return out;
    start = colon + 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: gtfs_rt_feed OUT.pb TIMESTAMP [vehicle:ID:TRIP:LAT:LON]... "
                 "[alert:ID:ROUTE:TEXT]... [update:ID:TRIP:STOP:DELAY]...\n");
    return 2;
  }
  sluice::gtfs_rt::FeedMessage feed;
  feed.mutable_header()->set_gtfs_realtime_version("2.0");
  feed.mutable_header()->set_timestamp(std::strtoull(argv[2], nullptr, 10));
  for (int i = 3; i < argc; ++i) {
    std::vector<std::string> f = Fields(argv[i]);
    auto* e = feed.add_entity();
    if (f[0] == "vehicle" && f.size() == 5) {
      e->set_id(f[1]);
      auto* v = e->mutable_vehicle();
      v->mutable_vehicle()->set_id(f[1]);
      v->mutable_trip()->set_trip_id(f[2]);
      v->mutable_position()->set_latitude(std::strtof(f[3].c_str(), nullptr));
      v->mutable_position()->set_longitude(std::strtof(f[4].c_str(), nullptr));
      v->set_timestamp(feed.header().timestamp());
    } else if (f[0] == "alert" && f.size() == 4) {
      e->set_id(f[1]);
      e->mutable_alert()->add_informed_entity()->set_route_id(f[2]);
      e->mutable_alert()->mutable_header_text()->add_translation()->set_text(f[3]);
    } else if (f[0] == "update" && f.size() == 5) {
      e->set_id(f[1]);
      auto* u = e->mutable_trip_update();
      u->mutable_trip()->set_trip_id(f[2]);
      auto* s = u->add_stop_time_update();
      s->set_stop_id(f[3]);
      s->mutable_arrival()->set_delay(std::atoi(f[4].c_str()));
    } else {
      std::fprintf(stderr, "gtfs_rt_feed: cannot read '%s'\n", argv[i]);
      return 2;
    }
  }
  std::ofstream out(argv[1], std::ios::binary | std::ios::trunc);
  if (!feed.SerializeToOstream(&out)) {
    std::fprintf(stderr, "gtfs_rt_feed: cannot write %s\n", argv[1]);
    return 1;
  }
  return 0;
}
