select sum(doubled) as total from good
