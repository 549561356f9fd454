-- Deliberately long: keeps the run (the environment's owner) busy.
select sum(a.range * b.range) as s from range(200000) a, range(1000000) b
