# mfgp developer targets. `make test` and `make demo` create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv test demo lint bench-featurize bench-calibration bench-architectures bench-metals \
	bench-ladder bench-quickstart bench-pool-scoring bench-campaign bench-synthetic bench-screen \
	bench-experts bench-reactions bench-planner bench-campaign-round bench-showcase bench-showcase-emukit bench-best \
	bench-campaign-summary experts docs clean notebooks

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

# TEST_WORKERS: pytest-xdist processes, one thread each (0: one process, the torch default
# threads); two halve the suite's time on the 2-core CI machine
TEST_WORKERS ?= 2
test: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS)

demo: $(STAMP)
	$(PY) -m mfgp demo

# the example notebooks: each examples/NN_name.ipynb re-executed from its paired .py, one at a
# time (each written when it ran to the end; it prints which one runs). MODE=auto (default):
# full mode where that takes minutes on 2 cores (05, 06), else fast (MFGP_FAST=1); MODE=fast,
# MODE=full for all; NB="03 04" for some of them only
MODE ?= auto
NB ?=
notebooks: $(STAMP)
	$(PY) -c "import jupytext, nbclient, ipykernel, jupyterlab" 2>/dev/null || \
		$(PY) -m pip install -q -c constraints.txt -e ".[notebook]"
	$(PY) examples/run_notebooks.py --mode $(MODE) $(NB)

lint: $(STAMP)
	$(PY) -m ruff check mfgp tests benchmarks examples

bench-featurize: $(STAMP)
	cd benchmarks && ../$(PY) bench_featurize.py

bench-calibration: $(STAMP)
	cd benchmarks && ../$(PY) bench_calibration.py

bench-architectures: $(STAMP)
	cd benchmarks && ../$(PY) bench_architectures.py

bench-metals: $(STAMP)
	cd benchmarks && ../$(PY) bench_metals.py

bench-ladder: $(STAMP)
	cd benchmarks && ../$(PY) bench_ladder.py

bench-pool-scoring: $(STAMP)
	cd benchmarks && ../$(PY) bench_pool_scoring.py

bench-quickstart: $(STAMP)
	cd benchmarks && ../$(PY) bench_quickstart.py

clean:
	rm -rf $(VENV) .pytest_cache build site *.egg-info

bench-synthetic: $(STAMP)
	$(PY) -m pip install -q "emukit==0.5.1" "GPy==1.15"
	cd benchmarks && ../$(PY) bench_synthetic.py

# the documentation site (mkdocs-material, API reference by mkdocstrings); --strict: a broken
# link or reference fails the build
docs: $(STAMP)
	$(PY) -m pip install -q -c constraints.txt -e ".[docs]"
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict -d site

bench-screen: $(STAMP)
	cd benchmarks && ../$(PY) bench_screen.py

# every planner scenario of issue #33, then their summary in results/bench_campaign.json:
# learn / cost (bench_campaign), window / cold (bench_planner), best (bench_best), the
# peers' showcase (bench_showcase); each resumable, hours on 2 cores in all
bench-campaign: $(STAMP)
	cd benchmarks && ../$(PY) bench_campaign.py
	cd benchmarks && ../$(PY) bench_planner.py
	cd benchmarks && ../$(PY) bench_best.py
	cd benchmarks && ../$(PY) bench_showcase.py
	cd benchmarks && ../$(PY) bench_showcase_emukit.py
	cd benchmarks && ../$(PY) campaign_summary.py

# the summary of the committed scenario results alone (nothing rerun)
bench-campaign-summary: $(STAMP)
	cd benchmarks && ../$(PY) campaign_summary.py

# BoTorch's discrete multi-fidelity tutorial problem: mfgp kg / mes beside BoTorch's qMFKG and
# qLogNEI (results/bench_showcase.*; resumable)
bench-showcase: $(STAMP)
	cd benchmarks && ../$(PY) bench_showcase.py

# find the most negative experimental formation enthalpy (regret), AR1 on OQMD + MP + expt
# (results/bench_best.*; resumable)
# Emukit's multi-fidelity BO example (Forrester, low 1 / high 5): mfgp kg / mes beside Emukit's
# own multi-information-source entropy search (results/bench_showcase_emukit.*; resumable; the
# Emukit rows need pip install -e .[compare])
bench-showcase-emukit: $(STAMP)
	cd benchmarks && ../$(PY) bench_showcase_emukit.py

bench-best: $(STAMP)
	cd benchmarks && ../$(PY) bench_best.py

# does the planner beat simple rules? window hits with the hurdle, 10 strategies x 20 seeds
# (results/bench_planner.*; resumable)
bench-planner: $(STAMP)
	cd benchmarks && ../$(PY) bench_planner.py

# one campaign round end to end (suggest 5 of 5,000 candidates, no refit), AR1 and hurdle
bench-campaign-round: $(STAMP)
	cd benchmarks && ../$(PY) bench_campaign_round.py

# reaction energies of hidden compounds, joint vs independent uncertainty (examples/05 in full)
bench-reactions: $(STAMP)
	cd benchmarks && ../$(PY) bench_reactions.py

# the learning curves of the mixture of experts (results/bench_experts.*; resumable)
bench-experts: $(STAMP)
	cd benchmarks && ../$(PY) bench_experts.py

# retrain the shipped source models into mfgp/experts/_library (about 15 minutes on 2 cores)
experts: $(STAMP)
	$(PY) -m mfgp.experts.train

# refit the shipped ready-made models into mfgp/pretrained/_models, with their model cards
# (mfgp.pretrained; the hurdle's fit takes minutes on 2 cores, the enthalpy model's 5-fold CV
# a few more). PRETRAINED_ARGS: e.g. "expt_gap --cv 5" (one model, cross-validated: 5 more fits)
.PHONY: pretrained
PRETRAINED_ARGS ?=
pretrained: $(STAMP)
	$(PY) -m mfgp.pretrained.build $(PRETRAINED_ARGS)
