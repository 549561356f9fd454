select * from 'data/extra.csv' e join a using (id)
