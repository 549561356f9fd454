/* ---
materialized: view
--- */
select s.stop_id, s.stop_name,
       (select z.zone from zones z where s.stop_lat >= z.min_lat order by z.min_lat desc limit 1) as zone
from stops s
