/* ---
schedule: "30 2 * * *"
--- */
select 1 as one
