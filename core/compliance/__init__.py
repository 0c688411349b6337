"""Compliance: who may be messaged, when, how often and with what words."""
