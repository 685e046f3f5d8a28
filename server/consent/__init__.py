"""Consent by purpose: the records, and the published texts they refer to."""
