-- fails at run time: the cast cannot succeed
select id, cast('not a number' as integer) as n from orders
