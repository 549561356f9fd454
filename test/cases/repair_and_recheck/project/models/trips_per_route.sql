/* ---
checks:
  - sql: "select * from {{ this }} t where not exists (select 1 from trips where trips.route_id = t.route_id)"
--- */
select route_id, count(*) as trips from trips group by all
