/* ---
schedule: {after: [aa]}
--- */
select 1 as x
