# The two entry points: `make run` (the main job) and `make test` (everything CI runs).
# Both bootstrap the virtualenv from nothing, so a fresh clone needs only python3.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench report clean console console-test fuzz fuzz-smoke

$(STAMP): pyproject.toml sdk/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' -e sdk/python
	touch $(STAMP)

# The web console (TypeScript, Vite): dependencies from the lock file, output in build/console.
CONSOLE_STAMP := console/node_modules/.installed

$(CONSOLE_STAMP): console/package.json console/package-lock.json
	cd console && npm ci --no-audit --no-fund --loglevel=error
	touch $(CONSOLE_STAMP)

console: $(CONSOLE_STAMP)
	cd console && npm run build

console-test: $(CONSOLE_STAMP)
	cd console && npm test

run: $(STAMP) console
	$(BIN)/python scripts/demo.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts sdk fuzz
	$(BIN)/ruff format --check src tests benchmarks scripts sdk fuzz

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -n 2 -q
	# The sandbox again on its pure-ctypes call path (the fallback when _fastcall is not built).
	PALYRA_PURE_CALL_PATH=1 $(BIN)/pytest -n 2 -q tests/test_runtime.py tests/test_runtime_hostile.py

# A bounded fuzzing pass (about a minute); `make fuzz` is the long one.
fuzz-smoke: $(STAMP) $(CONSOLE_STAMP)
	$(BIN)/python fuzz/run_all.py --seconds 12 --a2ui-runs 2000

fuzz: $(STAMP) $(CONSOLE_STAMP)
	$(BIN)/python fuzz/run_all.py --seconds $(or $(FUZZ_SECONDS),600) --a2ui-runs $(or $(A2UI_FUZZ_RUNS),200000)
	CRASH_TRIALS=$(or $(CRASH_TRIALS),50) $(BIN)/pytest -q -s tests/test_daemon_crash.py

test: lint typecheck console-test console unit fuzz-smoke

bench: $(STAMP)
	$(BIN)/python benchmarks/verify.py
	$(BIN)/python benchmarks/runtime.py
	$(BIN)/python benchmarks/http.py
	$(BIN)/python benchmarks/load.py

# Every benchmark again, several times, into docs/performance.md (several minutes; run on a quiet machine).
report: $(STAMP)
	$(BIN)/python benchmarks/report.py

clean:
	rm -rf $(VENV) build .palyra-demo .mypy_cache .ruff_cache .pytest_cache .hypothesis console/node_modules
