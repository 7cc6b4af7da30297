# Container images (issue 18): every image of builds.images in platform.yaml built from its
# generated Dockerfile with buildah, on a local stand-in for the base image (README,
# "Container images"). Cached per content: a warm `make images` builds nothing.

##@ Images

.PHONY: images
images: $(VENV_STAMP) ## Build every image from its generated Dockerfile (buildah; records in .run/images/images.json)
	nice scripts/build-images.sh

.PHONY: images-list
images-list: $(VENV_STAMP) ## Print the images platform.yaml builds, with every tag (JSON)
	@$(VENV)/bin/python scripts/images.py list

.PHONY: images-clean
images-clean: $(VENV_STAMP) ## Remove the built images, their build cache and archives (frees the disk they take)
	$(VENV)/bin/python scripts/images.py clean

.PHONY: registry-tools
registry-tools: ## Build the pinned CNCF distribution registry (a node pulls the images from it on 127.0.0.1)
	scripts/install-registry.sh

# tests/images runs the built images and pushes them to a registry.
TEST_TOOLS += images registry-tools
