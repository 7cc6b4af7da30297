##@ ML pipeline

ML_RUN_DIR ?= $(ROOT)/.run
TUNE_TRIALS ?= 4
TUNE_EPOCHS ?= 20

.PHONY: pipeline
pipeline: $(VENV_STAMP) ## Run the training pipeline locally (kfp.local) on the embedded data; print a summary
	$(VENV)/bin/mlp-pipeline run --runs $(ML_RUN_DIR)/pipeline --registry $(ML_RUN_DIR)/registry

.PHONY: tune
tune: $(VENV_STAMP) ## Local random search over the Katib search space through the train CLI
	$(VENV)/bin/mlp-tune --workdir $(ML_RUN_DIR)/tune --trials $(TUNE_TRIALS) --epochs $(TUNE_EPOCHS)

.PHONY: pipeline-compile
pipeline-compile: $(VENV_STAMP) ## Regenerate pipelines/compiled/ (IR + v2beta1 Pipeline objects)
	$(VENV)/bin/mlp-pipeline compile

.PHONY: requirements
requirements: $(VENV_STAMP) ## Regenerate each component's pinned requirements.txt from uv.lock
	$(VENV)/bin/python -m mlp_pipeline.requirements --write

.PHONY: registry
registry: $(VENV_STAMP) ## List the versions in the local model registry (.run/registry)
	$(VENV)/bin/mlp-registry --registry $(ML_RUN_DIR)/registry list wine
