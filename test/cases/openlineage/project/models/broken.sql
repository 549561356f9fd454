select error('broken on purpose') as x from stops
