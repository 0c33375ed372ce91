# The local stack of real servers (SeaweedFS S3, MLflow, Triton) on loopback; state in .genaug/.
#   make up [STACK_ARGS=--free-ports]    start them (idempotent); writes .genaug/stack.env
#   make status                           health of each; fails if any is down
#   make down                             stop exactly what `up` started
#   make backup TARGET=DIR|s3://bucket/prefix [KEEP=n]   MLflow, the ledger, the served models
#   make restore TARGET=.. [FORCE=1]      into a new stack (docs/backup.md)
#   make gc [APPLY=1] [GC_ARGS="--max-age-days 7"]   retention: a dry run unless APPLY=1 (docs/retention.md)
# Included from the Makefile, which defines VPY and STAMP (the venv and its install stamp).

STACK_ARGS ?=
$(call pass_env,up,STACK_ARGS)
# make backup: keep the KEEP newest backups under TARGET (empty: all); make restore: FORCE=1
# replaces a stack that is not empty. TARGET's Makefile default (`make pipeline`'s "local")
# is no place for a backup: it must come from the command line or the environment.
KEEP  ?=
FORCE ?= 0
$(call pass_env,backup restore,TARGET KEEP FORCE)
need_target = @if [ "$(origin TARGET)" = file ]; then echo "genaug: make $@ needs TARGET=<folder or \
  s3://bucket/prefix>, e.g. make $@ TARGET=/backups/genaug (docs/backup.md)" >&2; exit 2; fi

# make gc: the local runs' task outputs (RUNS) are swept with the stores; the policy's
# defaults live in genaug.ops.policy, and GC_ARGS overrides them flag by flag.
APPLY   ?= 0
GC_ARGS ?=
$(call pass_env,gc,APPLY GC_ARGS RUNS)

.PHONY: up down status backup restore gc

up: $(STAMP)
	$(VPY) -m genaug.stack up $$ARG_STACK_ARGS

down: $(STAMP)
	$(VPY) -m genaug.stack down

status: $(STAMP)
	$(VPY) -m genaug.stack status

backup: $(STAMP)
	$(need_target)
	$(VENV)/bin/genaug backup "$$ARG_TARGET" $${ARG_KEEP:+--keep "$$ARG_KEEP"}

restore: $(STAMP)
	$(need_target)
	$(VENV)/bin/genaug restore "$$ARG_TARGET" $$([ "$$ARG_FORCE" = 1 ] && echo --force)

gc: $(STAMP)
	$(VENV)/bin/genaug gc --pipeline-root "$$ARG_RUNS" $$([ "$$ARG_APPLY" = 1 ] && echo --apply) $$ARG_GC_ARGS
