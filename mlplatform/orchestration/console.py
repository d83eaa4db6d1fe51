"""What the command line's in-process runs print: warnings and errors, or every event with --verbose.

A bootstrap of 60 days records thousands of events (a check evaluation per partition and gate);
Dagster's console logger prints each at DEBUG, which buried the one line per step a person reads.
``--verbose`` sets ``MLPLATFORM_VERBOSE`` so the processes a command spawns (the simulation's
policies) print every event too.
"""

import os

VERBOSE_ENV = "MLPLATFORM_VERBOSE"


def run_log_config() -> dict:
    level = "DEBUG" if os.environ.get(VERBOSE_ENV) else "WARNING"
    return {"loggers": {"console": {"config": {"log_level": level}}}}
