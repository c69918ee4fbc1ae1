# The two commands of the README's quick start.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test bench install clean

$(BIN)/alertd: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(BIN)/alertd

install: $(BIN)/alertd

# Runs the daemon on config.example.yaml (simulator provider: no Twilio account
# needed). The first run creates an API key named "quickstart" and prints it once.
run: install
	@$(BIN)/alertd keys list -c config.example.yaml | grep -q ' quickstart ' || \
		{ echo "Your API key (shown once):"; $(BIN)/alertd keys create --name quickstart -c config.example.yaml; }
	$(BIN)/alertd run -c config.example.yaml

test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) alertd.db alertd.db-wal alertd.db-shm
