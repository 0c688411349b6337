"""Batches: the people a trigger found newly qualifying in one evaluation, awaiting a decision."""
