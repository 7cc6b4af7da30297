# Synthetic data at scale (issue 23): `make data SIZE=100` writes .run/data/digits-100x.csv, the
# default dataset's schema at 100 times its rows (bench/synthetic_data.py); the data-scale
# benchmark (`make bench BENCH=data`, bench/data.py) ingests, validates and preprocesses it with
# each step's memory capped.

##@ Data

SIZE ?= 10
DATA_DIR ?= $(ROOT)/.run/data

.PHONY: data
data: $(VENV_STAMP) ## Write a deterministic synthetic dataset of SIZE times the default rows (DATA_DIR/digits-<SIZE>x.csv)
	$(VENV)/bin/python -m bench.synthetic_data $(SIZE) $(DATA_DIR)/digits-$(SIZE)x.csv
