# Synthetic data at scale (issue 23): `make data SIZE=100` writes .run/data/digits-100x.csv, the
# default dataset's schema at 100 times its rows (bench/synthetic_data.py); the data-scale
# benchmark (`make bench BENCH=data`, bench/data.py) runs the whole pipeline on it with each
# step's memory capped, and once on data 5x the largest cap (5,800x: 2.9 GB of CSV, written and
# deleted by the run).

##@ Data

SIZE ?= 10
DATA_DIR ?= $(ROOT)/.run/data

.PHONY: data
data: $(VENV_STAMP) ## Write a deterministic synthetic dataset of SIZE times the default rows (DATA_DIR/digits-<SIZE>x.csv)
	$(VENV)/bin/python -m bench.synthetic_data $(SIZE) $(DATA_DIR)/digits-$(SIZE)x.csv
