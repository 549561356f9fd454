select * from nowhere
