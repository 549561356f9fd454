select * from c
