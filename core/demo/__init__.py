"""The worked example (SPEC §7), told as it happens: `winback demo`."""

from core.demo.outreach import run_demo
from core.demo.story import DemoResult, Story, StoryClock

__all__ = ["DemoResult", "Story", "StoryClock", "run_demo"]
