# The two commands of the README. Each creates .venv and installs the project when needed.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_ROOT ?= runs/demo

.PHONY: demo test test-slow test-all bench fidelity docs

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all,dev,docs]'
	touch $(STAMP)

# A real job on the CPU in a few minutes: PPO and the random agent on the classic suite, 2 seeds
# each, then an rliable report comparing them.
demo: $(STAMP)
	$(PY) -m harness.run suite=classic agent=ppo seeds=2 workers=2 root=$(DEMO_ROOT)
	$(PY) -m harness.run suite=classic agent=random seeds=2 workers=2 root=$(DEMO_ROOT)
	$(PY) -m results.report $(DEMO_ROOT) --suite classic --against random --out $(DEMO_ROOT)/report
	@echo "report: $(DEMO_ROOT)/report/report.md"

# The test suite (slow learning tests excluded; `make test-all` runs them too).
test: $(STAMP)
	MUJOCO_GL=$${MUJOCO_GL:-egl} $(PY) -m pytest -q

# The slow tests alone (CartPole learning with PPO and each Dreamer preset, a SLURM time-limit run, 20-fault injection per agent).
test-slow: $(STAMP)
	MUJOCO_GL=$${MUJOCO_GL:-egl} $(PY) -m pytest -q -m slow

test-all: $(STAMP)
	MUJOCO_GL=$${MUJOCO_GL:-egl} $(PY) -m pytest -q -m "slow or not slow"

bench: $(STAMP)
	$(PY) -m harness.bench

# The documentation site (mkdocs.yml) into site/; --strict fails on any warning, such as a broken link.
docs: $(STAMP)
	$(PY) -m mkdocs build --strict

# The learning study of docs/fidelity.md: agent=dreamerv3 beside agent=dreamerv3_official with identical
# settings (size 1m, train ratio 32, 3 seeds), one page per suite: DMC proprio cartpole_balance and
# reacher_easy, 30k agent steps (about 2 hours on 2 CPU cores); DMC vision cartpole_balance, 5k agent steps
# (about 50 minutes), scored by the 10 evaluation episodes after training: with the suite's 8 envs its
# episodes (500 agent steps each) all end at 4000 agent steps, none in the last 10% of the budget.
# Rerunning resumes the runs and rebuilds the pages.
FIDELITY_ROOT ?= runs/fidelity
FIDELITY_SIDES := agent=dreamerv3,dreamerv3_official seeds=3 agent.size=1m agent.train_ratio=32 workers=2 \
	root=$(FIDELITY_ROOT)
.PHONY: fidelity-proprio fidelity-vision
fidelity: fidelity-proprio fidelity-vision

fidelity-proprio: $(STAMP)
	$(PY) -m agents.official.setup
	MUJOCO_GL=$${MUJOCO_GL:-egl} $(PY) -m harness.run suite=dmc_proprio task=cartpole_balance,reacher_easy \
		steps=30000 $(FIDELITY_SIDES)
	$(PY) -m results.fidelity $(FIDELITY_ROOT) --suite dmc_proprio --out docs/fidelity.md

fidelity-vision: $(STAMP)
	$(PY) -m agents.official.setup
	MUJOCO_GL=$${MUJOCO_GL:-egl} $(PY) -m harness.run suite=dmc_vision task=cartpole_balance steps=5000 \
		$(FIDELITY_SIDES)
	$(PY) -m results.fidelity $(FIDELITY_ROOT) --suite dmc_vision --rule eval_after_training --out docs/fidelity.md
