##@ ML pipeline

ML_RUN_DIR ?= $(ROOT)/.run
TUNE_TRIALS ?= 4
TUNE_EPOCHS ?= 20
# Extra pipeline arguments, NAME=VALUE separated by spaces, e.g.
# PIPELINE_PARAMS="source=/data/digits.csv target=target" or PIPELINE_PARAMS=force_retrain=true
PIPELINE_PARAMS ?=
MODEL_NAME ?= digits

.PHONY: pipeline
pipeline: $(VENV_STAMP) ## Run the training pipeline locally (kfp.local); reuses the registered version if nothing changed
	$(VENV)/bin/mlp-pipeline run --runs $(ML_RUN_DIR)/pipeline --registry $(ML_RUN_DIR)/registry \
	  --datasets $(ML_RUN_DIR)/datasets $(foreach p,$(PIPELINE_PARAMS),--param $(p))

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
registry: $(VENV_STAMP) ## List the versions of the model in the local registry (.run/registry)
	$(VENV)/bin/mlp-registry --registry $(ML_RUN_DIR)/registry list $(MODEL_NAME)

.PHONY: lineage
lineage: $(VENV_STAMP) ## Trace the production version (.run/registry) back to its data snapshot (VERSION=n for another)
	$(VENV)/bin/mlp-registry --registry $(ML_RUN_DIR)/registry lineage $(MODEL_NAME) $(or $(VERSION),production)
