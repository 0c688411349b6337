"""Consent per channel, its history, and the suppression list."""
