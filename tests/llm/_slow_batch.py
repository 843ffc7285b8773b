"""Child process for the kill-and-resume test: a BatchJob over 40 records, ~50 ms each."""

import sys
import time

from recsage.llm import BatchJob


def work(rec):
    time.sleep(0.05)
    return {"double": rec["x"] * 2}


if __name__ == "__main__":
    out = sys.argv[1]
    BatchJob(out, work, progress=False).run(({"id": f"r{i}", "x": i} for i in range(40)), total=40)
