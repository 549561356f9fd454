select * from a
where id in (select id from b)
  and exists (select 1 from c where c.id = a.id)
