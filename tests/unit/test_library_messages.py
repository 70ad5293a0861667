"""Library errors speak of parameters, not of command-line flags (#14).

A library function called from Python has no ``--bins``: its errors name the parameter
(``n_bins must be ...``) through :class:`calibkit.errors.Param`, and the CLI prints the same
error with the flag (``--bins must be ...``), exactly as before. The check reads the source with
:mod:`ast`: every string that can reach a ``raise`` outside the command-line modules (the raise
itself, the local variables and module constants it names, the module's helper functions it
calls) must not hold a ``--flag``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from calibkit.cli._common import FLAGS
from calibkit.errors import InputError, Message, Param, UsageError

PACKAGE = Path(__file__).resolve().parents[2] / "calibkit"

#: The command line's own modules: flags are their words.
CLI_MODULES = ("cli/", "_fast_help.py", "_entry.py", "__main__.py")

FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
#: ``(from calibkit ece --json)`` says which command wrote a file, not which parameter to set.
COMMAND_LINE = re.compile(r"calibkit [a-z-]+ --json")


def _strings(node: ast.AST) -> list[str]:
    """The string constants under ``node``, and each f-string with its fields as ``x``."""
    out = []
    for n in ast.walk(node):
        if isinstance(n, ast.Constant) and isinstance(n.value, str):
            out.append(n.value)
        elif isinstance(n, ast.JoinedStr):  # f"--{name}": a flag whatever the name
            out.append("".join(v.value if isinstance(v, ast.Constant) else "x" for v in n.values))
    return out


def _body_strings(func: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    body = func.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    return [s for stmt in body for s in _strings(stmt)]


def _assigned(scope: ast.AST) -> dict[str, list[ast.AST]]:
    out: dict[str, list[ast.AST]] = {}
    for node in ast.walk(scope):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out.setdefault(target.id, []).append(node.value)
        elif (
            isinstance(node, (ast.AnnAssign, ast.AugAssign))
            and node.value is not None
            and isinstance(node.target, ast.Name)
        ):
            out.setdefault(node.target.id, []).append(node.value)
    return out


def _raised_texts(source: str) -> list[tuple[int, str]]:
    """``(line, text)`` for every string that can reach a ``raise`` (see the module docstring)."""
    tree = ast.parse(source)
    functions = {
        n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    module_names = _assigned(ast.Module(body=[n for n in tree.body if isinstance(n, ast.Assign)]))
    found: list[tuple[int, str]] = []

    def visit(scope: ast.AST) -> None:
        local_names = _assigned(scope)
        for node in ast.walk(scope):
            if not isinstance(node, ast.Raise) or node.exc is None:
                continue
            texts, seen = list(_strings(node.exc)), set()
            todo = [n for n in ast.walk(node.exc) if isinstance(n, (ast.Name, ast.Call))]
            while todo:
                n = todo.pop()
                if isinstance(n, ast.Name) and n.id not in seen:
                    seen.add(n.id)
                    for value in local_names.get(n.id, []) + module_names.get(n.id, []):
                        texts += _strings(value)
                        todo += [m for m in ast.walk(value) if isinstance(m, ast.Name)]
                elif isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
                    func = functions.get(n.func.id)
                    if func is not None and f"{func.name}()" not in seen:
                        seen.add(f"{func.name}()")
                        texts += _body_strings(func)
            found.extend((node.lineno, t) for t in texts)

    for func in ast.walk(tree):
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            visit(func)
    return found


def _flags_in(text: str) -> list[str]:
    return FLAG.findall(COMMAND_LINE.sub("", text))


#: Library modules still allowed to name flags, and why. Must end empty.
ALLOWED: dict[str, str] = {}


def _library_modules() -> list[Path]:
    return [
        p
        for p in sorted(PACKAGE.rglob("*.py"))
        if not str(p.relative_to(PACKAGE)).startswith(CLI_MODULES)
        and str(p.relative_to(PACKAGE)) not in ALLOWED
    ]


def test_no_library_error_names_a_flag() -> None:
    hits = [
        f"{path.relative_to(PACKAGE)}:{line}: {text!r}"
        for path in _library_modules()
        for line, text in _raised_texts(path.read_text(encoding="utf-8"))
        if _flags_in(text)
    ]
    assert hits == []


def test_the_check_sees_flags_in_raises_helpers_and_constants() -> None:
    source = (
        "HINT = 'give --unpaired'\n"
        "def _why(x):\n"
        "    '''Docstrings may say --anything.'''\n"
        "    return f'--out {x} is wrong'\n"
        "def f(x):\n"
        "    hint = ' (use --input logits)'\n"
        "    flag = f'--{x}'\n"
        "    if x:\n"
        "        raise ValueError(f'--bins must be >= 1; got {x}')\n"
        "    if x is None:\n"
        "        raise ValueError('bad' + hint)\n"
        "    if x == 1:\n"
        "        raise ValueError(_why(x))\n"
        "    if x == 2:\n"
        "        raise ValueError(HINT)\n"
        "    if x == 3:\n"
        "        raise ValueError(f'{flag}: unknown')\n"
        "    raise ValueError('x (from calibkit ece --json)')\n"
    )
    flagged = sorted({line for line, text in _raised_texts(source) if _flags_in(text)})
    assert flagged == [9, 11, 13, 15, 17]


def _spelled(node: ast.expr) -> set[str]:
    """The names an expression can give: a constant, or either branch of ``a if c else b``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _spelled(node.body) | _spelled(node.orelse)
    return set()


def test_every_parameter_named_in_a_library_error_has_a_flag() -> None:
    names: set[str] = set()
    for path in _library_modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            func = getattr(node, "func", None)
            if isinstance(node, ast.Call) and getattr(func, "id", None) == "Param":
                alias = next((k.value for k in node.keywords if k.arg == "alias"), None)
                key = alias if alias is not None else node.args[0]
                spelled = _spelled(key)
                assert spelled, ast.unparse(node)  # a name the check can read
                names |= spelled
    assert names, "no Param found: the check reads the wrong files"
    assert names <= set(FLAGS), sorted(names - set(FLAGS))


def test_message_renders_both_ways() -> None:
    err = InputError("val.npz", "made with 10 bins; give the same " + Param("n_bins"))
    assert str(err) == "val.npz: made with 10 bins; give the same n_bins"
    assert err.problem == "made with 10 bins; give the same n_bins"
    assert err.render(FLAGS) == "val.npz: made with 10 bins; give the same --bins"
    usage = UsageError(Param("device", "cuda:7") + ": no CUDA device is available")
    assert str(usage) == "device='cuda:7': no CUDA device is available"
    assert usage.render(FLAGS) == "--device cuda:7: no CUDA device is available"
    assert UsageError("plain").render(FLAGS) == "plain"
    both = Message("a ") + Param("ci") + " b " + Param("kind", "probs")
    assert both.render({"ci": "--ci"}) == "a --ci b kind='probs'"  # no flag: the library's name


def test_library_callers_read_parameters(tmp_path: Path) -> None:
    """Called from Python, the errors name the parameters of the call, not flags."""
    from calibkit.comparison import compare_models
    from calibkit.loaders import read_predictions
    from calibkit.sources.predictions import Predictions

    preds = Predictions.from_arrays(np.eye(3)[[0, 1, 2, 1]] * 3.0, [0, 1, 2, 1])
    with pytest.raises(UsageError) as info:
        compare_models({"a": preds}, ci=1.5)
    assert str(info.value) == "ci must lie in (0, 1); got 1.5"
    path = tmp_path / "x.npz"
    np.savez(path, z=np.zeros((4, 3)), y=np.array([0, 1, 2, 1]))
    with pytest.raises(InputError) as err:
        read_predictions(path)
    assert "--" not in str(err.value), str(err.value)
    assert "scores_key" in str(err.value)


def test_the_cli_still_prints_the_flags(tmp_path: Path) -> None:
    from _cli import invoke, one_error_line

    path = tmp_path / "x.npz"
    np.savez(path, z=np.zeros((4, 3)), y=np.array([0, 1, 2, 1]))
    message = one_error_line(invoke(CliRunner(), "ece", path), path)
    assert message.endswith("(name them with --logits-key or --probs-key)"), message
