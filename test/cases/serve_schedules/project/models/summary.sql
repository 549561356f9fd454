/* ---
schedule: {after: [readings]}
--- */
select count(*) as n, sum(value) as total from readings
