# mk/bench-vs-slurm.mk - pai against Slurm (Debian's slurmctld + slurmd in
# multiple-slurmd mode) on this machine, same workloads, in one run
# (docs/benchmarks.md, "pai versus Slurm").  Needs root; installs Slurm
# through scripts/deps.sh --slurm.
#   make bench-vs-slurm        NODES=16 GPUS=8 JOBS=1000 SEQ=50 STREAM=300 RATE=20 ROUNDS=2
#                              DIST=100 BF_SMALL=200 BF_LARGE=4 PERF=/tmp/pai.perf (see run.py)
#   python3 bench/vs-slurm/perfsplit.py /tmp/pai.perf   (pai's CPU by process class)
.PHONY: bench-vs-slurm
bench-vs-slurm: $(BUILD)/pai
	bash scripts/deps.sh --slurm
	PAI_BIN=$(abspath $(BUILD)/pai) python3 bench/vs-slurm/run.py
