.PHONY: demo test lint bench setup

# Install the demo's dependencies and start the demo (a scikit-learn model served over HTTP).
demo:
	scripts/demo

# Install everything the tests need (pip and Debian packages) and run the whole suite.
test:
	scripts/test

lint:
	.venv/bin/ruff check src tests bench examples
	.venv/bin/ruff format --check src tests bench examples
	.venv/bin/mypy src

# Run every benchmark briefly.
bench:
	scripts/setup dev,bench
	for b in bench/*.py; do .venv/bin/python $$b --quick || exit 1; done

setup:
	scripts/setup dev
