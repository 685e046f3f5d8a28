"""Retention: how long each kind of file is kept, legal holds that keep it longer, and the purge that
deletes what has run out for good (the file and its own key)."""
