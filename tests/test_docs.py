"""Generated docs must match what generates them, and the docs must point at files that exist.

docs/cli.md is generated from the real CLI (scripts/gen_cli_docs.py), docs/benchmarks.md from
benchmarks/results/*.json (benchmarks/write_doc.py). Fast: importing forensics.cli loads no ML
library, and nothing here runs a model. If a test here fails, regenerate:

    python scripts/gen_cli_docs.py
    python benchmarks/write_doc.py
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gen_cli_docs.py"
CLI_MD = ROOT / "docs" / "cli.md"
BENCH_DOC_SCRIPT = ROOT / "benchmarks" / "write_doc.py"


def load_script(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


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


def parse_command_line(line: str) -> None:
    """Parse a `forensics ...` command line as the CLI would, without running it: an unknown
    command or option, a missing required value or a value of the wrong type raises."""
    import typer

    from forensics.cli import app

    gen = load_generator()
    words = shlex.split(line, comments=True)
    assert words[0] == "forensics", line
    cmd, ctx, i = typer.main.get_command(app), None, 1
    while gen.is_group(cmd):
        ctx = gen.make_ctx(cmd, words[i - 1], ctx)
        cmd = cmd.get_command(ctx, words[i])
        assert cmd is not None, f"{line}: no command {words[i]!r}"
        i += 1
    cmd.make_context(words[i - 1], words[i:], parent=ctx)


def test_every_command_help_ends_with_an_example_that_parses():
    """Each command's --help says what it does, each argument and option has its own help, and
    the help ends with an example that the CLI parses as written."""
    import typer

    from forensics.cli import app

    gen = load_generator()
    for path, cmd, ctx in gen.walk(typer.main.get_command(app), ["forensics"], None):
        if gen.is_group(cmd):
            continue
        undescribed = [p.name for p in cmd.get_params(ctx) if p.name != "help" and not getattr(p, "help", None)]
        assert not undescribed, f"{' '.join(path)}: no help for {undescribed}"
        help_text = gen.clean_help(cmd.help)
        assert f"Example: `{' '.join(path)}" in help_text, f"{' '.join(path)} --help shows no example"
        for example in re.findall(r"`(forensics [^`]*)`", help_text.split("Example:", 1)[1]):
            parse_command_line(example)


def command_lines_in_code_blocks(text: str) -> list[str]:
    """The `forensics ...` lines of the fenced code blocks in a markdown text (continuations joined)."""
    lines, in_block, pending = [], False, ""
    for raw in text.splitlines():
        if raw.startswith("```"):
            in_block = not in_block
            continue
        line = pending + raw.strip()
        pending = ""
        if in_block and line.endswith("\\"):
            pending = line[:-1] + " "
        elif in_block and line.startswith("forensics "):
            lines.append(line)
    return lines


@pytest.mark.parametrize("doc", ["README.md", "docs/user-guide.md", "docs/deployment.md"])
def test_the_commands_the_docs_show_parse(doc):
    lines = command_lines_in_code_blocks((ROOT / doc).read_text(encoding="utf-8"))
    assert len(lines) >= 5, doc
    for line in lines:
        parse_command_line(line)


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


def test_benchmarks_doc_matches_the_results():
    writer = load_script(BENCH_DOC_SCRIPT)
    assert (ROOT / "docs" / "benchmarks.md").read_text() == writer.render(), (
        "docs/benchmarks.md is out of date; run `python benchmarks/write_doc.py`")
    assert writer.main(["--check"]) == 0


def test_benchmarks_doc_quotes_the_recorded_machine(tmp_path, monkeypatch):
    results = tmp_path / "results"
    shutil.copytree(ROOT / "benchmarks" / "results", results)
    for f in results.glob("*.json"):
        data = json.loads(f.read_text())
        if "machine" in data:
            data["machine"] = {"cpu": "Test CPU 9000", "cores": 64, "memory_gb": 512, "gpu": "Test GPU",
                               "torch": "9.9.9"}
            f.write_text(json.dumps(data))
    writer = load_script(BENCH_DOC_SCRIPT)
    monkeypatch.setattr(writer, "RES", results)
    text = writer.render()
    assert "Machine: Test CPU 9000, 64 cores, 512 GB RAM, GPU Test GPU; torch 9.9.9" in text
    assert "Other jobs shared the 64 cores" in text and "AMD EPYC" not in text

    data = json.loads((results / "throughput.json").read_text())
    del data["machine"]
    (results / "throughput.json").write_text(json.dumps(data))
    with pytest.raises(SystemExit, match="throughput.json records no machine"):
        writer.render()


# Paths the docs name under these folders must exist (a moved script or renamed log breaks this);
# benchmarks/work/ is what the benchmarks build at run time (git-ignored).
REPO_PATH = re.compile(r"(?<![\w./-])((?:scripts|research|configs|docs/training|benchmarks)/[\w./-]*\w)")
DOC_FILES = [ROOT / "README.md", ROOT / "configs" / "README.md", *sorted((ROOT / "docs").glob("*.md")),
             *sorted((ROOT / "research").rglob("*.md"))]


def test_paths_named_in_the_docs_exist():
    missing = []
    for doc in DOC_FILES:
        for path in REPO_PATH.findall(doc.read_text(encoding="utf-8")):
            if path.startswith("benchmarks/work/"):
                continue
            if not (ROOT / path).exists() and not (doc.parent / path).exists():
                missing.append(f"{doc.relative_to(ROOT)}: {path}")
    assert not missing, "\n".join(missing)


def test_no_work_period_wording_in_docs_scripts_research_configs():
    pattern = re.compile(r"session ?[0-9]|\bs[0-9]_|work[ ]period", re.IGNORECASE)
    roots = ["README.md", "docs", "scripts", "research", "configs", "benchmarks"]
    hits = []
    for root in roots:
        base = ROOT / root
        for f in [base] if base.is_file() else sorted(base.rglob("*")):
            if f.is_file() and f.suffix in {".md", ".py", ".sh", ".json", ".jsonl", ".log", ".txt"}:
                hits += [f"{f.relative_to(ROOT)}: {m.group(0)}" for m in pattern.finditer(f.read_text(encoding="utf-8"))]
    assert not hits, "\n".join(hits)


def test_architecture_module_table_matches_the_tree():
    """docs/architecture.md's table of modules names every product module (a package row such as
    `forensics/training/` covers its modules) and only paths that exist."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = "\n".join(line for line in text.splitlines() if line.startswith("| `"))
    named = set(re.findall(r"`((?:forensics|gallery|migrations)/[\w/.]*)`", table))
    assert named, "no module table found"
    assert not [p for p in named if not (ROOT / p).exists()], "the table names paths that do not exist"
    modules = [p.relative_to(ROOT).as_posix() for pkg in ("forensics", "gallery")
               for p in (ROOT / pkg).rglob("*.py") if p.name != "__init__.py"]
    covered = lambda m: m in named or any(n.endswith("/") and m.startswith(n) for n in named)  # noqa: E731
    assert not [m for m in modules if not covered(m)], "modules missing from docs/architecture.md"


def defined_names(py: Path) -> dict[str, set[str]]:
    """A module's top-level names, each with what its body defines (a class's methods and fields)."""
    names: dict[str, set[str]] = {}
    for node in ast.parse(py.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names[node.name] = {n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
            names[node.name] |= {n.target.id for n in node.body
                                 if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
        elif isinstance(node, ast.Assign):
            names.update({t.id: set() for t in node.targets if isinstance(t, ast.Name)})
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = set()
    return names


def dotted_name_exists(ref: str, classes: dict[str, set[str]]) -> bool:
    """`module.name`, `package.module.Class.method` (from the root, forensics/ or gallery/) or
    `Class.member` names something defined in the tree."""
    parts = ref.split(".")
    if parts[0] in classes:
        return len(parts) == 2 and parts[1] in classes[parts[0]]
    for base in (ROOT, ROOT / "forensics", ROOT / "gallery"):
        path, i = base, 0
        while i < len(parts) and (path / parts[i]).is_dir():
            path, i = path / parts[i], i + 1
        if i == len(parts) and path != base:
            return True
        if i < len(parts) and (path / f"{parts[i]}.py").is_file():
            names, rest = defined_names(path / f"{parts[i]}.py"), parts[i + 1:]
            if not rest or (rest[0] in names and (len(rest) == 1 or (len(rest) == 2 and rest[1] in names[rest[0]]))):
                return True
    return False


def test_architecture_names_only_code_that_exists():
    """Every dotted name docs/architecture.md gives (`ranking.rank`, `gallery.pgvector.add_plain`,
    `GalleryIndexes.refresh`, in the diagram too) whose first part is one of our modules or classes
    is defined in the tree: a renamed function or moved module fails here."""
    py_files = [p for pkg in ("forensics", "gallery") for p in (ROOT / pkg).rglob("*.py")]
    modules = {p.stem for p in py_files} | {p.parent.name for p in py_files}
    classes: dict[str, set[str]] = {}
    for py in py_files:
        for name, members in defined_names(py).items():
            if name[:1].isupper():
                classes.setdefault(name, set()).update(members)
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    refs = {m for m in re.findall(r"(?<![\w./-])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)(?![\w/-])", text)
            if m.split(".")[0] in modules | set(classes) and m.rsplit(".", 1)[1] not in {"py", "json", "faiss"}}
    assert len(refs) >= 20, sorted(refs)
    assert not [r for r in sorted(refs) if not dotted_name_exists(r, classes)], "architecture.md names code that is not there"
