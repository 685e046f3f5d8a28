"""Who is calling: logins, passwords and their throttle, access tokens, signing keys."""
