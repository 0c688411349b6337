"""Composition root: the CLI, the Bolt app, the web app and the worker are assembled here."""
