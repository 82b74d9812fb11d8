module bluegreen-harness/benchmarks/loadgen

go 1.26.0
