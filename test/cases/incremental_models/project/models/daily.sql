/* ---
materialized: incremental
strategy: replace_partition
partition_by: [day]
--- */
select day, count(*) as events, sum(amount) as amount from events
{% if is_incremental %} where day >= (select max(day) from {{ this }}) {% endif %}
group by day
