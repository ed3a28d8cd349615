# Set-up, tests and tools. `make run` and `make test` are all a fresh clone needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app clinic
LOCALES := en zh_Hant_HK zh_Hans_CN
PORT ?= 5000
TEST_WORKERS ?= auto

.PHONY: run test lint bench bench-scale bench-consultations bench-load profile translations compile-translations install clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

compile-translations: install
	$(BIN)/pybabel compile --statistics -d translations -D messages

run: compile-translations
	$(FLASK) init-db
	$(FLASK) demo --if-empty
	$(FLASK) run --host 127.0.0.1 --port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint compile-translations
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

bench: compile-translations
	$(BIN)/python bench/pages.py
	$(BIN)/python bench/search.py
	$(BIN)/python bench/service_days.py

# Long runs (minutes; millions of rows, or 16 users for 60 s per engine): run them on purpose.
bench-scale: compile-translations
	$(BIN)/python bench/scale.py

bench-consultations: compile-translations
	$(BIN)/python bench/consultations.py

bench-load: compile-translations
	$(BIN)/python bench/load.py

# Where a page's server time goes: `make profile PAGE=today` prints pyinstrument's call tree.
profile: compile-translations
	$(BIN)/python bench/profile.py $(PAGE)

# Extract every marked string and merge it into the three catalogues; translate, then commit the .po files.
translations: install
	$(BIN)/pybabel extract --no-location --sort-output -F babel.cfg -k _l -k lazy_gettext -o translations/messages.pot .
	@for l in $(LOCALES); do \
	  if [ -f translations/$$l/LC_MESSAGES/messages.po ]; then \
	    $(BIN)/pybabel update --no-fuzzy-matching --ignore-obsolete -i translations/messages.pot -d translations -l $$l; \
	  else \
	    $(BIN)/pybabel init -i translations/messages.pot -d translations -l $$l; \
	  fi; \
	done

clean:
	rm -rf $(VENV) build *.egg-info
