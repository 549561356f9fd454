select count(*) as n from people
