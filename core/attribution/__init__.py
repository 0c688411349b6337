"""Funded attribution: which enrollment a funded loan is credited to, stored once (step 8)."""
