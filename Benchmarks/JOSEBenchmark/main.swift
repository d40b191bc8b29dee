print("JOSEBenchmark: see make bench")
