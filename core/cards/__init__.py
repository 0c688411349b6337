"""Cards: what Winback posts to the loan officers' chat (warm replies, call tasks, escalations,
batch approvals), each posted exactly once by a job that retries. No Slack types here."""
