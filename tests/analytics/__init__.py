"""Analytics tests: motion, detection, tracking, zones and the pipeline."""
