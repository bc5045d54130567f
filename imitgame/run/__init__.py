"""The run machinery: the runner (one run of any problem kind), tracking, and the entry layer
(Hydra, signals, exit codes)."""
