"""FHIR R4 resources built from our records, for hospital systems."""
