"""Child process for the Ray kill-and-resume test: a BatchJob on the Ray cluster at argv[2]."""

import sys
import time

from ray import cloudpickle

from recsage.llm import BatchJob, EngineConfig


def work(rec):
    time.sleep(0.15)
    return {"double": rec["x"] * 2}


if __name__ == "__main__":
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers cannot import this script
    out, address, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    engine = EngineConfig(engine="ray", address=address, actors=2, cpus_per_actor=1, block_size=2)
    BatchJob(out, work, progress=False, engine=engine).run(({"id": f"r{i}", "x": i} for i in range(n)), total=n)
