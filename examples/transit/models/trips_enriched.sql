/* ---
materialized: view
description: Trips with their route and the weekdays they run.
--- */
select
    t.trip_id,
    t.route_id,
    r.route_short_name,
    r.route_long_name,
    rt.route_type_name,
    t.service_id,
    t.trip_headsign,
    t.direction_id,
    c.monday + c.tuesday + c.wednesday + c.thursday + c.friday as weekdays_per_week,
    c.saturday = 1 as runs_saturday,
    c.sunday = 1 as runs_sunday
from gtfs_trips t
join gtfs_routes r using (route_id)
left join route_types rt on rt.route_type = r.route_type
left join gtfs_calendar c using (service_id)
