"""The shipped example notebooks: paired with their scripts, executed, small.

Every ``examples/NN_name.py`` has an ``examples/NN_name.ipynb`` whose cells are the script's
(jupytext pairing, checked by converting the notebook back to a percent script) and whose
outputs come from ``make notebooks``: no failed cell, at least one figure, the mode printed
first. Cheap (no cell is executed here: ``tests/test_examples.py`` runs the scripts).
"""

import difflib
import json
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(EXAMPLES.glob("[0-9][0-9]_*.py"))
MAX_BYTES = 1_000_000  # one notebook
MAX_TOTAL = 5_000_000  # all of them


def test_there_are_eight_examples_and_a_notebook_for_each():
    assert len(SCRIPTS) >= 8
    missing = [p.with_suffix(".ipynb").name for p in SCRIPTS if not p.with_suffix(".ipynb").exists()]
    assert not missing, f"no notebook for {missing}: run `make notebooks NB=...`"
    orphans = {p.stem for p in EXAMPLES.glob("[0-9][0-9]_*.ipynb")} - {p.stem for p in SCRIPTS}
    assert not orphans, f"notebooks without a script: {sorted(orphans)}"


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_notebook_code_is_its_script(script):
    nb = jupytext.read(script.with_suffix(".ipynb"))
    assert nb.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent"
    text = jupytext.writes(nb, fmt="py:percent")
    expected = script.read_text(encoding="utf-8")
    if text != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True),
                                            f"{script.name}", f"{script.stem}.ipynb"))  # fmt: skip
        pytest.fail(f"{script.stem}.ipynb is not paired with {script.name}; run "
                    f"`make notebooks NB={script.stem[:2]}` (code and outputs) or `jupytext "
                    f"--sync examples/{script.name}` (code only):\n{diff}")  # fmt: skip


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_notebook_has_its_outputs_and_figures(script):
    raw = script.with_suffix(".ipynb").read_bytes()
    assert len(raw) < MAX_BYTES, f"{script.stem}.ipynb is {len(raw) / 1e6:.1f} MB"
    nb = json.loads(raw)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    outputs = [o for c in code for o in c["outputs"]]
    assert all(c["execution_count"] for c in code), "a cell was not executed: `make notebooks`"
    errors = [o for o in outputs if o["output_type"] == "error"]
    assert not errors, f"a cell failed: {errors[0].get('ename')}: {errors[0].get('evalue')}"
    assert any("image/png" in o.get("data", {}) for o in outputs), "no figure in the outputs"
    first = "".join("".join(o["text"]) for o in code[0]["outputs"] if o["output_type"] == "stream")
    assert first.startswith("mode: "), "the first cell must print which mode made the outputs"
    assert "widgets" not in nb["metadata"] and not any(
        "application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)


def test_notebooks_total_size():
    total = sum(p.stat().st_size for p in EXAMPLES.glob("[0-9][0-9]_*.ipynb"))
    assert total < MAX_TOTAL, f"the notebooks hold {total / 1e6:.1f} MB; lower the figures' dpi"
