"""Every batch command survives kill -9: real `recsage` processes are killed three times at random
points and rerun; their output lines are counted against the input ids (0 lost, 0 duplicated) and
compared with an uninterrupted run of the same command.

The LLM here is the scripted OpenAI-compatible server of `_fake_openai.py` (answers made up, tests
only), so a record takes ~50 ms and the kills land mid-job; the same kills against the real
embedded model are in `benchmarks/bench_reliability.py`. (`features build-users`, which has no
LLM, has its kill test in tests/features/test_tables.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from _kill import BATCH_COMMANDS, batch_command, kill_and_resume, prepare_batch_inputs

N = 16


@pytest.fixture(scope="module")
def inputs(bundled_data, shared_data, tmp_path_factory) -> dict[str, Path]:
    return prepare_batch_inputs(tmp_path_factory.mktemp("kill-inputs"), bundled_data, shared_data, N)


@pytest.mark.parametrize("command", BATCH_COMMANDS)
def test_batch_command_survives_kill_9(command, fake_llm, inputs, tmp_path):
    argv_for, ids = batch_command(command, inputs, fake_llm, N)
    report = kill_and_resume(argv_for, tmp_path / "run", ids, env={"RECSAGE_CACHE": str(tmp_path / "cache")}, reference=tmp_path / "ref")
    assert report["kills"] == 3 and report["records"] == N, report
    assert report["lost"] == report["duplicated"] == report["unexpected"] == report["failed"] == 0, report
    assert report["equal_to_uninterrupted"], report
