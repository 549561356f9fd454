/* ---
schedule: {after: [gtfs_stop_times, gtfs_trips, gtfs_stops]}  # rebuilt by `sluice serve` when they publish
description: Departures per stop and route in one service week, busiest first.
checks:
  - not_null: [stop_id, route_id]
  - unique: [stop_id, route_id]
  - relationships: {column: stop_id, to: gtfs_stops.stop_id}
  - expression: "departures_per_week >= departures_per_day"
--- */
with departures as (
    select st.stop_id, te.route_id, te.route_short_name,
           te.weekdays_per_week + te.runs_saturday::int + te.runs_sunday::int as days_per_week
    from gtfs_stop_times st
    join trips_enriched te on te.trip_id = st.trip_id::bigint
    where st.pickup_type is null or st.pickup_type <> '1'
)
select
    d.stop_id::bigint as stop_id,
    s.stop_name,
    d.route_id,
    d.route_short_name,
    count(*) as departures_per_day,
    sum(d.days_per_week) as departures_per_week
from departures d
join gtfs_stops s on s.stop_id = d.stop_id::bigint
group by all
order by departures_per_week desc, stop_id, route_id
