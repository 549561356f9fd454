/* ---
checks:
  - expression: "name in (select name from routes)"
--- */
select route_id, name from routes
