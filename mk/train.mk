##@ Distributed training

TRAIN_RUN_DIR ?= $(ROOT)/.run/train-distributed
TRAIN_WORKERS ?= 2
TRAIN_EPOCHS ?= 12

# The default data (mlp-ingest's default source), preprocessed once per run directory.
$(TRAIN_RUN_DIR)/prep/features.json: $(VENV_STAMP)
	rm -rf $(TRAIN_RUN_DIR)/dataset $(TRAIN_RUN_DIR)/prep
	$(VENV)/bin/mlp-ingest --output $(TRAIN_RUN_DIR)/dataset
	$(VENV)/bin/mlp-preprocess --dataset $(TRAIN_RUN_DIR)/dataset --output $(TRAIN_RUN_DIR)/prep

.PHONY: train-distributed
train-distributed: $(TRAIN_RUN_DIR)/prep/features.json ## Train on TRAIN_WORKERS=2 local TensorFlow workers (MultiWorkerMirroredStrategy, TF_CONFIG on 127.0.0.1)
	rm -rf $(TRAIN_RUN_DIR)/model $(TRAIN_RUN_DIR)/cluster
	$(VENV)/bin/python -m mlp_train.launch --workers $(TRAIN_WORKERS) \
	  --workdir $(TRAIN_RUN_DIR)/cluster -- --data $(TRAIN_RUN_DIR)/prep \
	  --output $(TRAIN_RUN_DIR)/model --epochs $(TRAIN_EPOCHS)
	@echo "chief's model: $(TRAIN_RUN_DIR)/model (metrics.json: distribution, val_accuracy)"

.PHONY: train-scaling
train-scaling: $(TRAIN_RUN_DIR)/prep/features.json ## Measure 1 vs TRAIN_WORKERS=2 local workers on the default data and a 10x enlargement (README table)
	$(VENV)/bin/python -m mlp_train.scaling --data $(TRAIN_RUN_DIR)/prep \
	  --workdir $(TRAIN_RUN_DIR)/scaling --workers $(TRAIN_WORKERS)
