select * from a join b using (id) left join C on C.id = a.id
