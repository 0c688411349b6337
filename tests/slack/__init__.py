"""Tests of the Slack side: the loopback fake Web API and signed inbound requests."""
