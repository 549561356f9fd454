select * from bad
