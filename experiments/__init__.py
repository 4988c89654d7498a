"""The litexp command line, configs, search spaces, reports and benchmarks."""
