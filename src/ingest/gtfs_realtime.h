// GTFS-realtime feeds as tables (`format: gtfs-rt`). A feed is one protobuf
// FeedMessage (ingest/proto/gtfs_realtime.proto, the specification's field
// numbers); each table of the source picks one kind of entity with
// `options: {entity: ...}`:
//   vehicle_positions   one row per vehicle position
//   trip_updates        one row per trip update (its stop time updates counted)
//   stop_time_updates   one row per stop time update, with its trip
//   alerts              one row per alert (periods and informed entities as lists)
// Every row carries the feed's header timestamp (feed_timestamp) and the
// entity id; POSIX times become UTC timestamps, enumerations their names
// (a value newer than Sluice's list stays as its number). Several polls of a
// feed (partition: {accumulate: true}) are read in one scan.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace sluice {

// The entity kinds a table can ask for, in the order above.
const std::vector<std::string>& GtfsRealtimeEntities();

// One feed's rows of one entity kind as newline-delimited JSON, in the
// columns GtfsRealtimeColumns gives. Errors name what is wrong with the
// bytes (not a FeedMessage; an HTML page or JSON where protobuf was expected).
Result<std::string> GtfsRealtimeToNdjson(const std::string& bytes, const std::string& entity);
// DuckDB's `columns` argument for read_json: {'name': 'TYPE', ...}.
Result<std::string> GtfsRealtimeColumns(const std::string& entity);

class Decoder;
// The gtfs-rt decoder (registered in BuiltinDecoders).
std::unique_ptr<Decoder> NewGtfsRealtimeDecoder();

}  // namespace sluice
