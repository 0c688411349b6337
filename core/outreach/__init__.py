"""Outreach: enrollments into tracks, the outbox of messages, replies, and the global pause."""
