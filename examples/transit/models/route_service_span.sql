/* ---
schedule: {after: [gtfs_stop_times, gtfs_trips]}  # rebuilt by `sluice serve` when they publish
description: First and last departure of each route, and how many trips it runs.
checks:
  - unique: [route_id]
  - row_count: {min: 1}
--- */
-- GTFS times can pass 24:00 (a trip after midnight belongs to the day before),
-- so they are compared as text of fixed width, not parsed as TIME.
select
    te.route_id,
    te.route_short_name,
    te.route_long_name,
    count(distinct te.trip_id) as trips,
    min(lpad(st.departure_time, 8, '0')) as first_departure,
    max(lpad(st.departure_time, 8, '0')) as last_departure
from trips_enriched te
join gtfs_stop_times st on st.trip_id::bigint = te.trip_id
group by all
order by te.route_id
