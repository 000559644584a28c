# Build the book and run every check. The first call creates .venv and installs the pinned
# requirements (about one minute with the torch wheel already on disk).

# bash for its `time` keyword in the chapter target.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NB_TMP := _build/nbval
CHAPTERS := $(wildcard book/*.md)

.PHONY: help install book test unit nbval strict-book verify chapter bench clean

help:
	@echo "make book      build the executed HTML book into _build/html"
	@echo "make test      unit tests, every chapter under nbval, the strict book build, claims"
	@echo "make unit      unit tests only"
	@echo "make nbval     run every chapter as a notebook under nbval"
	@echo "make verify    run every claim: python -m reludae verify"
	@echo "make chapter NAME=memorization   execute one chapter and report its time"
	@echo "make bench     exact expected loss against Monte Carlo; writes benchmarks/RESULTS.md"
	@echo "make clean     remove _build (keeps .venv)"

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

book: $(STAMP)
	rm -rf _build
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "The book is at $(CURDIR)/_build/html/index.html"

test: unit verify nbval strict-book
	@echo "make test: all checks passed"

unit: $(STAMP)
	$(BIN)/python -m pytest tests -q

verify: $(STAMP)
	$(BIN)/python -m reludae verify

# nbval collects .ipynb files only, so the MyST chapters are converted into a scratch folder.
# The conversion does not execute anything; nbval runs each notebook in the current
# environment and fails on any cell that raises (lax mode: stored outputs are not compared).
nbval: $(STAMP)
	rm -rf $(NB_TMP)
	mkdir -p $(NB_TMP)
	for chapter in $(CHAPTERS); do \
	  $(BIN)/jupytext --quiet --to ipynb -o $(NB_TMP)/$$(basename $$chapter .md).ipynb $$chapter || exit 1; \
	done
	cd $(NB_TMP) && ../../$(BIN)/python -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider -q .

strict-book: book

chapter: $(STAMP)
	@test -n "$(NAME)" || { echo "usage: make chapter NAME=<chapter file name without .md>"; exit 2; }
	@test -f book/$(NAME).md || { echo "no chapter book/$(NAME).md; choose one of: $(notdir $(CHAPTERS:.md=))"; exit 2; }
	mkdir -p $(NB_TMP)
	$(BIN)/jupytext --quiet --to ipynb -o $(NB_TMP)/$(NAME).ipynb book/$(NAME).md
	cd $(NB_TMP) && time ../../$(BIN)/jupyter-execute --inplace $(NAME).ipynb
	@echo "Executed notebook: $(NB_TMP)/$(NAME).ipynb"

bench: $(STAMP)
	$(BIN)/python benchmarks/exact_vs_monte_carlo.py

clean:
	rm -rf _build .pytest_cache
