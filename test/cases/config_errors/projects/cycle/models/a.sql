select * from b
