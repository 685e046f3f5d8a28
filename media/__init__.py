"""Media on the server: the forwarding relay that carries rooms of three or more, and recording."""
