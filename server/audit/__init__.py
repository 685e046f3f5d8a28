"""The tamper-evident audit trail, and what auditors do with it."""
