"""Running the CLI in-process (typer's test runner): for the test suite and scripts that drive
`forensics` as a user would, and want its output and exit code."""

from __future__ import annotations

from typer.testing import CliRunner, Result

from forensics.cli import app

_runner = CliRunner()


def run_cli(*args, ok: bool = True) -> Result:
    """`forensics *args` in this process (each argument passed as text); exceptions propagate.
    `ok`: fail unless the exit code is 0, showing the output."""
    res = _runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert res.exit_code == 0, res.output
    return res
