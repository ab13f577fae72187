"""WorkerPool logic without I/O: how many workers a pool needs (`scaling`) and which queued
task goes next (`dispatch`). The shell (baton.handlers.pools, the worker executor) reads the
clock and the cluster and passes what it read in; nothing here blocks, sleeps or reads a clock.
"""
