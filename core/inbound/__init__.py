"""Everything a borrower sends or clicks, coming back in: replies, opt-outs, delivery status,
unsubscribes, opens, clicks and savings-page visits (SPEC §5)."""
