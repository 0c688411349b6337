"""Tests of the inbound core: the ledger, warm replies and how staff list them."""
