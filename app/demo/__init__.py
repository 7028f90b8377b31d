"""`simmim demo`: the whole system, offline, on a corpus the project writes itself."""
