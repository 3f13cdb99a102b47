"""Reaction energies of hidden compounds: the joint posterior's uncertainty against independent terms.

Runs ``examples/05_reactions.py`` in full (the Kim 2017 enthalpies with OQMD and MP as lower
fidelities, the Al-Ni and Al-Fe experiments hidden from training, their DFT values kept) and
records its table: each reaction's predicted energy, its standard deviation from the joint
posterior (``std``) and from the terms' own uncertainties (``std_independent``), the energy
from the hidden measurements and the z-scores under each. ``make bench-reactions``.
"""

from __future__ import annotations

import os
import runpy
from pathlib import Path

from _common import write_results


def main() -> None:
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.pop("MFGP_FAST", None)
    example = Path(__file__).resolve().parent.parent / "examples" / "05_reactions.py"
    ns = runpy.run_path(str(example), run_name="__main__")
    table = ns["table"].drop(columns="reaction")
    write_results("bench_reactions", table.to_dict("records"), table=table.round(3))


if __name__ == "__main__":
    main()
