"""Tracks: the multi-touch sequences per segment, their templates, rendering and lint."""
