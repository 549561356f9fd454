select r.route_short_name, count(*) as departures
from gtfs_stop_times st
join gtfs_trips t using (trip_id)
join gtfs_routes r using (route_id)
group by all
