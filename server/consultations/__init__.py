"""Consultations and their rooms: records, opening hours, room tokens and gate, chat, recordings."""
