"""Commands that send refuse to start when a template breaks a compliance rule."""

from __future__ import annotations

from pathlib import Path


def test_a_template_lint_violation_refuses_to_start(winback, tmp_path: Path) -> None:
    config = tmp_path / "winback.toml"
    # One segment is stricter than the shipped SMS templates allow: every SMS now violates.
    config.write_text("[compliance]\nmax_sms_segments = 1\n")
    result = winback("dispatch", "--json", env={"WINBACK_CONFIG": str(config)})
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert "template problem(s)" in result.stderr
    assert "refinance/intro.sms.j2" in result.stderr
    assert result.stdout == ""


def test_shipped_templates_start_cleanly(winback) -> None:
    assert winback.json("dispatch")["sent"] == 0
