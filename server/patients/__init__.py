"""Patients: their records, their invitations to a visit, and what of them other hospitals see."""
