"""The benchmarks: ``python -m bench.bench_<name>`` from the checkout, or ``make bench`` for all."""
