#include "ingest/gtfs_realtime.h"

#include <fmt/format.h>
#include <ingest/proto/gtfs_realtime.pb.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <ctime>
#include <limits>
#include <map>
#include <utility>

#include "core/fs.h"
#include "core/hash.h"
#include "core/strings.h"
#include "ingest/decoder.h"

namespace sluice {
namespace {

namespace rt = sluice::gtfs_rt;
constexpr int kConverterVersion = 1;  // bumped with every change to the rows written
using Columns = std::vector<std::pair<std::string, std::string>>;

const Columns& TripColumns() {
  static const Columns c = {{"trip_id", "VARCHAR"},
                            {"route_id", "VARCHAR"},
                            {"direction_id", "INTEGER"},
                            {"start_date", "VARCHAR"},
                            {"start_time", "VARCHAR"}};
  return c;
}

// The columns of each entity kind, in order.
const std::map<std::string, Columns>& EntityColumns() {
  static const std::map<std::string, Columns> kColumns = [] {
    std::map<std::string, Columns> m;
    auto with_trip = [](Columns head, const Columns& tail) {
      Columns out = {{"feed_timestamp", "TIMESTAMP"}, {"entity_id", "VARCHAR"}};
      out.insert(out.end(), TripColumns().begin(), TripColumns().end());
      out.insert(out.end(), head.begin(), head.end());
      out.insert(out.end(), tail.begin(), tail.end());
      return out;
    };
    m["vehicle_positions"] = with_trip({{"trip_schedule_relationship", "VARCHAR"},
                                        {"vehicle_id", "VARCHAR"},
                                        {"vehicle_label", "VARCHAR"},
                                        {"license_plate", "VARCHAR"},
                                        {"latitude", "DOUBLE"},
                                        {"longitude", "DOUBLE"},
                                        {"bearing", "DOUBLE"},
                                        {"odometer", "DOUBLE"},
                                        {"speed", "DOUBLE"},
                                        {"current_stop_sequence", "BIGINT"},
                                        {"stop_id", "VARCHAR"},
                                        {"current_status", "VARCHAR"},
                                        {"timestamp", "TIMESTAMP"}},
                                       {{"congestion_level", "VARCHAR"},
                                        {"occupancy_status", "VARCHAR"},
                                        {"occupancy_percentage", "BIGINT"}});
    m["trip_updates"] = with_trip({{"schedule_relationship", "VARCHAR"},
                                   {"vehicle_id", "VARCHAR"},
                                   {"vehicle_label", "VARCHAR"},
                                   {"timestamp", "TIMESTAMP"},
                                   {"delay", "INTEGER"}},
                                  {{"stop_time_updates", "INTEGER"}});
    m["stop_time_updates"] = with_trip({{"stop_sequence", "BIGINT"},
                                        {"stop_id", "VARCHAR"},
                                        {"arrival_delay", "INTEGER"},
                                        {"arrival_time", "TIMESTAMP"},
                                        {"arrival_uncertainty", "INTEGER"},
                                        {"departure_delay", "INTEGER"},
                                        {"departure_time", "TIMESTAMP"},
                                        {"departure_uncertainty", "INTEGER"}},
                                       {{"schedule_relationship", "VARCHAR"}});
    m["alerts"] = {{"feed_timestamp", "TIMESTAMP"},
                   {"entity_id", "VARCHAR"},
                   {"cause", "VARCHAR"},
                   {"effect", "VARCHAR"},
                   {"header_text", "VARCHAR"},
                   {"description_text", "VARCHAR"},
                   {"url", "VARCHAR"},
                   {"active_periods", "STRUCT(\"start\" TIMESTAMP, \"end\" TIMESTAMP)[]"},
                   {"informed_entities",
                    "STRUCT(agency_id VARCHAR, route_id VARCHAR, route_type INTEGER, trip_id "
                    "VARCHAR, direction_id INTEGER, stop_id VARCHAR)[]"}};
    return m;
  }();
  return kColumns;
}

// The specification's names of enumeration values; others stay numbers.
std::string Named(const std::vector<const char*>& names, int64_t v) {
  if (v >= 0 && static_cast<size_t>(v) < names.size() && names[v][0] != '\0') return names[v];
  return std::to_string(v);
}
const std::vector<const char*> kTripRelationship = {
    "SCHEDULED", "ADDED", "UNSCHEDULED", "CANCELED", "", "REPLACEMENT", "DUPLICATED", "DELETED"};
const std::vector<const char*> kStopRelationship = {"SCHEDULED", "SKIPPED", "NO_DATA",
                                                    "UNSCHEDULED"};
const std::vector<const char*> kStopStatus = {"INCOMING_AT", "STOPPED_AT", "IN_TRANSIT_TO"};
const std::vector<const char*> kCongestion = {"UNKNOWN_CONGESTION_LEVEL", "RUNNING_SMOOTHLY",
                                              "STOP_AND_GO", "CONGESTION", "SEVERE_CONGESTION"};
const std::vector<const char*> kOccupancy = {"EMPTY",
                                             "MANY_SEATS_AVAILABLE",
                                             "FEW_SEATS_AVAILABLE",
                                             "STANDING_ROOM_ONLY",
                                             "CRUSHED_STANDING_ROOM_ONLY",
                                             "FULL",
                                             "NOT_ACCEPTING_PASSENGERS",
                                             "NO_DATA_AVAILABLE",
                                             "NOT_BOARDABLE"};
const std::vector<const char*> kCause = {"",
                                         "UNKNOWN_CAUSE",
                                         "OTHER_CAUSE",
                                         "TECHNICAL_PROBLEM",
                                         "STRIKE",
                                         "DEMONSTRATION",
                                         "ACCIDENT",
                                         "HOLIDAY",
                                         "WEATHER",
                                         "MAINTENANCE",
                                         "CONSTRUCTION",
                                         "POLICE_ACTIVITY",
                                         "MEDICAL_EMERGENCY"};
const std::vector<const char*> kEffect = {"",
                                          "NO_SERVICE",
                                          "REDUCED_SERVICE",
                                          "SIGNIFICANT_DELAYS",
                                          "DETOUR",
                                          "ADDITIONAL_SERVICE",
                                          "MODIFIED_SERVICE",
                                          "OTHER_EFFECT",
                                          "UNKNOWN_EFFECT",
                                          "STOP_MOVED",
                                          "NO_EFFECT",
                                          "ACCESSIBILITY_ISSUE"};

// POSIX seconds as a UTC timestamp DuckDB reads ("2026-01-05 07:00:00");
// null for 0 and for what is no time of years 1970-9999 (a feed that sends
// milliseconds, or -1 for "unknown"): one such value must not make every
// poll of a partition unreadable.
nlohmann::json Time(uint64_t seconds) {
  if (seconds == 0 || seconds > 253402300799ULL) return nullptr;
  std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  if (!gmtime_r(&t, &tm)) return nullptr;
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

// A float as the decimal it was written as (37.7749, not 37.77490234375).
double Decimal(float f) { return std::strtod(fmt::format("{}", f).c_str(), nullptr); }

// The first translation (feeds rarely send more than one language).
nlohmann::json Text(const rt::TranslatedString& s) {
  if (s.translation_size() == 0) return nullptr;
  return s.translation(0).text();
}

void PutTrip(nlohmann::json& row, const rt::TripDescriptor& trip) {
  if (trip.has_trip_id()) row["trip_id"] = trip.trip_id();
  if (trip.has_route_id()) row["route_id"] = trip.route_id();
  if (trip.has_direction_id()) row["direction_id"] = trip.direction_id();
  if (trip.has_start_date()) row["start_date"] = trip.start_date();
  if (trip.has_start_time()) row["start_time"] = trip.start_time();
}

void PutEvent(nlohmann::json& row, const std::string& prefix,
              const rt::TripUpdate::StopTimeEvent& e) {
  if (e.has_delay()) row[prefix + "_delay"] = e.delay();
  if (e.has_time() && e.time() > 0) row[prefix + "_time"] = Time(static_cast<uint64_t>(e.time()));
  if (e.has_uncertainty()) row[prefix + "_uncertainty"] = e.uncertainty();
}

// What the bytes look like when they are not protobuf, for the error.
std::string LooksLike(const std::string& bytes) {
  size_t i = 0;
  while (i < bytes.size() &&
         (bytes[i] == ' ' || bytes[i] == '\n' || bytes[i] == '\r' || bytes[i] == '\t')) {
    ++i;
  }
  if (i < bytes.size() && bytes[i] == '<') return " (it starts like an HTML or XML page)";
  if (i < bytes.size() && (bytes[i] == '{' || bytes[i] == '[')) return " (it starts like JSON)";
  return "";
}

class GtfsRealtimeDecoder final : public Decoder {
 public:
  Result<std::string> TableSql(const DecodeRequest& req) const override {
    std::string entity = req.options.is_object() ? req.options.value("entity", "") : "";
    ASSIGN_OR_RETURN(std::string columns, GtfsRealtimeColumns(entity));
    std::vector<std::string> files =
        req.paths.empty() ? std::vector<std::string>{req.path} : req.paths;
    std::vector<std::string> converted;
    for (const std::string& file : files) {
      ASSIGN_OR_RETURN(std::string ndjson, Convert(req, file, entity));
      converted.push_back(QuoteLiteral(ndjson));
    }
    std::string sql = "read_json([" + Join(converted, ", ") +
                      "], format='newline_delimited', columns=" + columns + ")";
    if (req.all_text) return "(SELECT COLUMNS(*)::VARCHAR FROM " + sql + ")";
    return sql;
  }
  bool ReadsManyFiles(const DecodeRequest& /*req*/) const override { return true; }
  std::string Extension() const override { return "pb"; }

 private:
  // The feed's rows of `entity` as NDJSON in the derived cache, written once
  // per feed (its content) and entity.
  static Result<std::string> Convert(const DecodeRequest& req, const std::string& file,
                                     const std::string& entity) {
    // A lake object is named by its content's sha256; another file is hashed.
    std::string name = file.substr(file.rfind('/') + 1);
    std::string sha = name.substr(0, name.find('.'));
    if (sha.size() != 64 || sha.find_first_not_of("0123456789abcdef") != std::string::npos) {
      ASSIGN_OR_RETURN(sha, Sha256File(file));
    }
    std::string dir = req.cache_dir.empty() ? Dirname(file) : JoinPath(req.cache_dir, "gtfs-rt");
    // The converter's version in the name: rows written by an older one are
    // never read by a newer one.
    std::string out = JoinPath(dir, sha.substr(0, 32) + "." + entity + "." +
                                        std::to_string(kConverterVersion) + ".ndjson");
    if (FileExists(out)) return out;
    ASSIGN_OR_RETURN(std::string bytes, ReadFile(file));
    Result<std::string> rows = GtfsRealtimeToNdjson(bytes, entity);
    if (!rows.ok()) return rows.status().WithContext(file);
    RETURN_IF_ERROR(MakeDirs(dir));
    RETURN_IF_ERROR(WriteFileAtomic(out, *rows));
    return out;
  }
};

}  // namespace

const std::vector<std::string>& GtfsRealtimeEntities() {
  static const std::vector<std::string> kEntities = {"vehicle_positions", "trip_updates",
                                                     "stop_time_updates", "alerts"};
  return kEntities;
}

Result<std::string> GtfsRealtimeColumns(const std::string& entity) {
  auto it = EntityColumns().find(entity);
  if (it == EntityColumns().end()) {
    return Status::Invalid(
        (entity.empty() ? std::string("format gtfs-rt: say which entities a table holds")
                        : "format gtfs-rt: unknown entity '" + entity + "'") +
        " with options: {entity: ...}, one of " + Join(GtfsRealtimeEntities(), ", "));
  }
  std::vector<std::string> cols;
  for (const auto& [name, type] : it->second) {
    cols.push_back(QuoteLiteral(name) + ": " + QuoteLiteral(type));
  }
  return "{" + Join(cols, ", ") + "}";
}

Result<std::string> GtfsRealtimeToNdjson(const std::string& bytes, const std::string& entity) {
  RETURN_IF_ERROR(GtfsRealtimeColumns(entity).status());  // an unknown entity says which exist
  rt::FeedMessage feed;
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()) ||
      !feed.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Status::Invalid("not a GTFS-realtime feed: " + std::to_string(bytes.size()) +
                           " bytes that do not parse as a protobuf FeedMessage" + LooksLike(bytes) +
                           "; check that the URL serves the feed itself");
  }
  if (!feed.has_header()) {
    // Every feed has its header; an empty body (a proxy's glitch) is no feed.
    return Status::Invalid(bytes.empty()
                               ? std::string("not a GTFS-realtime feed: the body is empty")
                               : "not a GTFS-realtime feed: the bytes parse as protobuf "
                                 "but hold no feed header" +
                                     LooksLike(bytes));
  }
  nlohmann::json feed_time =
      feed.header().has_timestamp() ? Time(feed.header().timestamp()) : nlohmann::json(nullptr);
  std::string out;
  auto emit = [&](nlohmann::json row) {
    out += row.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    out += '\n';
  };
  for (const rt::FeedEntity& e : feed.entity()) {
    nlohmann::json base = {{"feed_timestamp", feed_time}, {"entity_id", e.id()}};
    if (entity == "vehicle_positions" && e.has_vehicle()) {
      const rt::VehiclePosition& v = e.vehicle();
      nlohmann::json row = base;
      PutTrip(row, v.trip());
      if (v.trip().has_schedule_relationship()) {
        row["trip_schedule_relationship"] =
            Named(kTripRelationship, v.trip().schedule_relationship());
      }
      if (v.vehicle().has_id()) row["vehicle_id"] = v.vehicle().id();
      if (v.vehicle().has_label()) row["vehicle_label"] = v.vehicle().label();
      if (v.vehicle().has_license_plate()) row["license_plate"] = v.vehicle().license_plate();
      if (v.has_position()) {
        const rt::Position& p = v.position();
        if (p.has_latitude()) row["latitude"] = Decimal(p.latitude());
        if (p.has_longitude()) row["longitude"] = Decimal(p.longitude());
        if (p.has_bearing()) row["bearing"] = Decimal(p.bearing());
        if (p.has_odometer()) row["odometer"] = p.odometer();
        if (p.has_speed()) row["speed"] = Decimal(p.speed());
      }
      if (v.has_current_stop_sequence()) row["current_stop_sequence"] = v.current_stop_sequence();
      if (v.has_stop_id()) row["stop_id"] = v.stop_id();
      if (v.has_current_status()) row["current_status"] = Named(kStopStatus, v.current_status());
      if (v.has_timestamp()) row["timestamp"] = Time(v.timestamp());
      if (v.has_congestion_level()) {
        row["congestion_level"] = Named(kCongestion, v.congestion_level());
      }
      if (v.has_occupancy_status()) {
        row["occupancy_status"] = Named(kOccupancy, v.occupancy_status());
      }
      if (v.has_occupancy_percentage()) row["occupancy_percentage"] = v.occupancy_percentage();
      emit(std::move(row));
    } else if ((entity == "trip_updates" || entity == "stop_time_updates") && e.has_trip_update()) {
      const rt::TripUpdate& u = e.trip_update();
      nlohmann::json trip = base;
      PutTrip(trip, u.trip());
      if (entity == "trip_updates") {
        nlohmann::json row = trip;
        if (u.trip().has_schedule_relationship()) {
          row["schedule_relationship"] = Named(kTripRelationship, u.trip().schedule_relationship());
        }
        if (u.vehicle().has_id()) row["vehicle_id"] = u.vehicle().id();
        if (u.vehicle().has_label()) row["vehicle_label"] = u.vehicle().label();
        if (u.has_timestamp()) row["timestamp"] = Time(u.timestamp());
        if (u.has_delay()) row["delay"] = u.delay();
        row["stop_time_updates"] = u.stop_time_update_size();
        emit(std::move(row));
        continue;
      }
      for (const rt::TripUpdate::StopTimeUpdate& s : u.stop_time_update()) {
        nlohmann::json row = trip;
        if (s.has_stop_sequence()) row["stop_sequence"] = s.stop_sequence();
        if (s.has_stop_id()) row["stop_id"] = s.stop_id();
        if (s.has_arrival()) PutEvent(row, "arrival", s.arrival());
        if (s.has_departure()) PutEvent(row, "departure", s.departure());
        if (s.has_schedule_relationship()) {
          row["schedule_relationship"] = Named(kStopRelationship, s.schedule_relationship());
        }
        emit(std::move(row));
      }
    } else if (entity == "alerts" && e.has_alert()) {
      const rt::Alert& a = e.alert();
      nlohmann::json row = base;
      if (a.has_cause()) row["cause"] = Named(kCause, a.cause());
      if (a.has_effect()) row["effect"] = Named(kEffect, a.effect());
      if (a.has_header_text()) row["header_text"] = Text(a.header_text());
      if (a.has_description_text()) row["description_text"] = Text(a.description_text());
      if (a.has_url()) row["url"] = Text(a.url());
      nlohmann::json periods = nlohmann::json::array();
      for (const rt::TimeRange& r : a.active_period()) {
        periods.push_back({{"start", r.has_start() ? Time(r.start()) : nlohmann::json(nullptr)},
                           {"end", r.has_end() ? Time(r.end()) : nlohmann::json(nullptr)}});
      }
      row["active_periods"] = std::move(periods);
      nlohmann::json informed = nlohmann::json::array();
      for (const rt::EntitySelector& s : a.informed_entity()) {
        nlohmann::json sel = nlohmann::json::object();
        if (s.has_agency_id()) sel["agency_id"] = s.agency_id();
        if (s.has_route_id()) sel["route_id"] = s.route_id();
        if (s.has_route_type()) sel["route_type"] = s.route_type();
        if (s.has_trip() && s.trip().has_trip_id()) sel["trip_id"] = s.trip().trip_id();
        if (s.has_direction_id()) sel["direction_id"] = s.direction_id();
        if (s.has_stop_id()) sel["stop_id"] = s.stop_id();
        informed.push_back(std::move(sel));
      }
      row["informed_entities"] = std::move(informed);
      emit(std::move(row));
    }
  }
  return out;
}

std::unique_ptr<Decoder> NewGtfsRealtimeDecoder() {
  return std::make_unique<GtfsRealtimeDecoder>();
}

}  // namespace sluice
