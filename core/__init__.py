"""Winback core: the engine. No Slack types, no web framework, no CLI."""
