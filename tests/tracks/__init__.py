"""Tests of tracks: templates, rendering, lint and SMS length."""
