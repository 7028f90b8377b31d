"""Milvus Lite's file held by another process: named in the error, no traceback (issue 35)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from indexer.index.milvus_store import MilvusSetupError, connect
from simmim.settings import Settings
from tests.processes import terminate

HOLD = """
import sys, time
from pymilvus import MilvusClient
MilvusClient(uri=sys.argv[1]).list_collections()
print("holding", flush=True)
time.sleep(120)
"""


def test_a_lite_file_open_elsewhere_names_the_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    uri = str(tmp_path / "milvus.db")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, uri], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"holding\n"
        settings = Settings(
            data_dir=tmp_path,
            index={"backend": "milvus", "milvus_uri": uri, "milvus_timeout_s": 5},  # type: ignore[arg-type]
        )
        with caplog.at_level(logging.ERROR), pytest.raises(MilvusSetupError) as refused:
            connect(settings)
        said = refused.value.message
        assert f"is open in pid {holder.pid} (" in said and "one process at a time" in said
        assert "close the dashboard" in (refused.value.hint or "")
        assert "DataDirLockedError" not in caplog.text  # reported once, in words
    finally:
        terminate([holder])
