"""docs/cli.md is generated from the real CLI (scripts/gen_cli_docs.py) and must match it.

Fast: importing forensics.cli loads no ML library, and nothing here runs a model.
If a test here fails after a CLI change, regenerate the reference:

    python scripts/gen_cli_docs.py
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gen_cli_docs.py"
CLI_MD = ROOT / "docs" / "cli.md"


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_cli_docs", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cli_reference_matches_the_code():
    # A narrow terminal must not change the output: the generator never wraps to the terminal.
    env = dict(os.environ, COLUMNS="40")
    res = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True,
                         timeout=120, cwd=ROOT / "docs", env=env)
    assert res.returncode == 0, (f"{CLI_MD} is out of date; run `python scripts/gen_cli_docs.py`\n"
                                 f"{res.stdout}{res.stderr}")


def test_generator_loads_no_ml_library():
    code = ("import importlib.util, sys; "
            f"spec = importlib.util.spec_from_file_location('g', {str(SCRIPT)!r}); "
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); m.render(); "
            "heavy = [x for x in ('torch', 'facenet_pytorch', 'faiss', 'weasyprint') if x in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def test_every_command_and_option_is_documented():
    import typer

    from forensics.cli import app

    gen = load_generator()
    text = CLI_MD.read_text(encoding="utf-8")
    commands = []
    for path, cmd, ctx in gen.walk(typer.main.get_command(app), ["forensics"], None):
        if len(path) == 1:
            continue
        commands.append(" ".join(path[1:]))
        assert f"## `{' '.join(path)}`" in text, path
        for p in cmd.get_params(ctx):
            if p.name == "help" or getattr(p, "hidden", False):
                continue
            if p.param_type_name == "argument":
                assert f"| `{p.name.upper()}` |" in text, (path, p.name)
            else:
                for opt in p.opts:
                    assert f"`{opt}`" in text, (path, opt)
    for expected in ("gallery init", "gallery check", "gallery rebuild-index", "enroll", "query", "queries show",
                     "report", "audit verify", "audit export", "version"):
        assert expected in commands, expected
    for header in ("FORENSICS_DB", "| 130 |", "| 2 |", "| 1 |"):
        assert header in text, header


def test_check_mode_flags_a_stale_file(tmp_path, capsys):
    gen = load_generator()
    out = tmp_path / "cli.md"
    assert gen.main(["--check", "--out", str(out)]) == 1  # missing
    assert gen.main(["--out", str(out)]) == 0
    assert gen.main(["--check", "--out", str(out)]) == 0
    out.write_text(out.read_text(encoding="utf-8").replace("--top", "--topp", 1), encoding="utf-8")
    assert gen.main(["--check", "--out", str(out)]) == 1
    assert "out of date" in capsys.readouterr().err


def test_output_is_deterministic():
    gen = load_generator()
    assert gen.render() == gen.render()
