"""Thin adapters: Slack commands/actions and HTTP webhooks, one core call each."""
