# The local stack of real servers (SeaweedFS S3, MLflow, Triton) on loopback; state in .genaug/.
#   make up [STACK_ARGS=--free-ports]    start them (idempotent); writes .genaug/stack.env
#   make status                           health of each; fails if any is down
#   make down                             stop exactly what `up` started
# Included from the Makefile, which defines VPY and STAMP (the venv and its install stamp).

STACK_ARGS ?=
$(call pass_env,up,STACK_ARGS)

.PHONY: up down status

up: $(STAMP)
	$(VPY) -m genaug.stack up $$ARG_STACK_ARGS

down: $(STAMP)
	$(VPY) -m genaug.stack down

status: $(STAMP)
	$(VPY) -m genaug.stack status
