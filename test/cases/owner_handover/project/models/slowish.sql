select count(*) as n from range(3000000) a join ids on a.range % 2 = ids.id % 2
