# The two commands of the README. Each creates .venv and installs the project when needed.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_ROOT ?= runs/demo

.PHONY: demo test test-slow test-all bench fidelity

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all,dev]'
	touch $(STAMP)

# A real job on the CPU in a few minutes: PPO and the random agent on the classic suite, 2 seeds
# each, then an rliable report comparing them.
demo: $(STAMP)
	$(PY) -m harness.run suite=classic agent=ppo seeds=2 workers=2 root=$(DEMO_ROOT)
	$(PY) -m harness.run suite=classic agent=random seeds=2 workers=2 root=$(DEMO_ROOT)
	$(PY) -m results.report $(DEMO_ROOT) --suite classic --out $(DEMO_ROOT)/report
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

# The learning study of docs/fidelity.md: agent=dreamerv3 beside agent=dreamerv3_official with identical
# settings (DMC proprio cartpole_balance and reacher_easy, 3 seeds, 30k agent steps, size 1m, train ratio 32),
# then the page. About 2 hours on 2 CPU cores. Rerunning resumes the runs and rebuilds the page.
FIDELITY_ROOT ?= runs/fidelity
FIDELITY_RUN := suite=dmc_proprio agent=dreamerv3,dreamerv3_official task=cartpole_balance,reacher_easy seeds=3 \
	agent.size=1m agent.train_ratio=32 steps=30000 workers=2 root=$(FIDELITY_ROOT)
fidelity: $(STAMP)
	$(PY) -m agents.official.setup
	MUJOCO_GL=$${MUJOCO_GL:-egl} $(PY) -m harness.run $(FIDELITY_RUN)
	$(PY) -m results.fidelity $(FIDELITY_ROOT) --out docs/fidelity.md
