/* ---
description: Each state's population against the shop's stores there.
checks:
  - relationships: {column: usps, to: dim_state.usps}
--- */
select d.usps, d.name, d.region, d.population,
       count(s.store_id) as stores,
       case when count(s.store_id) > 0 then d.population // count(s.store_id) end as people_per_store
from dim_state d
left join stores s on s.state = d.usps
group by d.usps, d.name, d.region, d.population
