"""The `mobilebert` command line: `mobilebert run` (task pipelines over stdin) and `mobilebert demo`."""
