"""One writer per output folder: a second run into the same --out is refused, never interleaved."""

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from recsage.cli.main import app
from recsage.core.errors import InvalidInputError
from recsage.core.locks import exclusive_folder
from recsage.llm.batch import BatchJob


def test_a_second_writer_is_refused_and_a_killed_holder_leaves_no_stale_lock(tmp_path):
    out = tmp_path / "out"
    with exclusive_folder(out, "training run"):
        with pytest.raises(InvalidInputError, match=r"another recsage training run \(pid \d+\) is writing to this folder"):
            with exclusive_folder(out):
                pass
    with exclusive_folder(out):  # released at the end of the block
        pass
    code = "import sys, time\nfrom recsage.core.locks import exclusive_folder\nheld = exclusive_folder(sys.argv[1], 'push job')\nheld.__enter__()\nprint('held', flush=True)\ntime.sleep(120)"
    holder = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(InvalidInputError, match=f"another recsage push job \\(pid {holder.pid}\\)"):
            with exclusive_folder(out):
                pass
    finally:
        holder.kill()
        holder.wait()
    with exclusive_folder(out):  # kill -9 released it
        pass


def test_batch_job_and_train_refuse_a_busy_out(tmp_path):
    job = BatchJob(tmp_path / "job", lambda r: {"x": 1}, progress=False)
    with exclusive_folder(tmp_path / "job", "batch job"):
        with pytest.raises(InvalidInputError, match="another recsage batch job"):
            job.run([{"id": 1}])
    assert job.run([{"id": 1}]).total_done == 1
    with exclusive_folder(tmp_path / "run", "training run"):  # refused before any work: the data folder is not even read
        r = CliRunner().invoke(app, ["train", "sasrec", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")])
    assert r.exit_code == 2 and "another recsage training run" in r.output and "Traceback" not in r.output
