"""Patients: registration, identity documents, search, the patient page and the check-in queue."""
