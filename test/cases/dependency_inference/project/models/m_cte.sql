-- "a" is a CTE here: it shadows the source a, so the only dependency is c.
with a as (select * from c)
select * from a
