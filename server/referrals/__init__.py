"""Referrals: the pure flow (``flow``), the operations on them (``service``) and their inputs (``inputs``)."""
