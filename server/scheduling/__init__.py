"""Scheduling: specialists' hours and slots, booking, calendar feeds, reminders."""
