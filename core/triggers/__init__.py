"""Triggers: the moments a past borrower or applicant may need a loan again."""
