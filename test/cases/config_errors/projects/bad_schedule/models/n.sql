/* ---
schedule: {cron: "@daily", timezone: Europe/Pariss, misfire: often}
--- */
select 1 as x
