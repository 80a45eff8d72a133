# depth_nodes: the two commands a new machine needs are `make demo` and `make test`.
# Both set up everything first (Debian packages when root, .venv with pinned packages,
# the package itself) and are safe to re-run.

VENV    := .venv
PY      := $(VENV)/bin/python
OUT     ?= out/demo
# DDS stays on loopback; each entry point gets its own domain.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export MUJOCO_GL ?= osmesa
export PYOPENGL_PLATFORM ?= osmesa

.PHONY: setup test demo bench mutation lock clean

setup:
	@./scripts/setup_env.sh

test: setup
	ROS_DOMAIN_ID=$${ROS_DOMAIN_ID:-41} $(PY) -m pytest -q -p no:cacheprovider test

demo: setup
	ROS_DOMAIN_ID=$${ROS_DOMAIN_ID:-42} $(PY) scripts/perception_demo.py --out $(OUT)

bench: setup
	ROS_DOMAIN_ID=$${ROS_DOMAIN_ID:-43} $(PY) -m benchmarks

# Mutation testing of the core maths with mutmut (not part of `make test`; minutes per module):
# report in out/mutation/report.md. MUTATION_ARGS="--only geometry --sample 0" for one module, all mutants.
mutation: setup
	ROS_DOMAIN_ID=$${ROS_DOMAIN_ID:-44} $(PY) scripts/mutation.py $(MUTATION_ARGS)

# Regenerate the pinned lock from requirements.in (needs the package registry).
lock:
	rm -rf /tmp/depth_nodes_lock && python3.11 -m venv /tmp/depth_nodes_lock
	/tmp/depth_nodes_lock/bin/pip install -q -r requirements.in
	/tmp/depth_nodes_lock/bin/python scripts/freeze_lock.py > requirements.txt

clean:
	rm -rf $(VENV) out build *.egg-info
