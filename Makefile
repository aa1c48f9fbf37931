# The two commands: `make demo` and `make test`. Both install what they need first.
.PHONY: setup demo test lint bench-record bench-playback bench-analytics bench-web

setup:
	@bash scripts/setup.sh

demo: setup
	@bash scripts/services.sh
	.venv/bin/vigil demo

# pytest exits 5 when it collects no test; that is not a failure of the project.
test: setup
	@bash scripts/services.sh
	.venv/bin/ruff check src tests $(wildcard bench)
	.venv/bin/mypy
	.venv/bin/pytest; rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

lint: setup
	.venv/bin/ruff check src tests $(wildcard bench)
	.venv/bin/mypy

bench-record: setup
	.venv/bin/python bench/record.py

bench-playback: setup
	.venv/bin/python bench/playback.py

bench-analytics: setup
	.venv/bin/python bench/analytics.py

bench-web: setup
	.venv/bin/python bench/web.py
