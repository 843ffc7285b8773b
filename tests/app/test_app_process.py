"""`recsage app` is the server process itself: SIGTERM to it stops the workbench, no orphan left serving."""

import signal
import subprocess
import sys
import time

import httpx
import pytest

pytestmark = pytest.mark.slow


def test_sigterm_to_recsage_app_stops_the_server(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**__import__("os").environ, "RECSAGE_WORKSPACE": str(tmp_path / "ws")}
    proc = subprocess.Popen([sys.executable, "-m", "recsage.cli", "app", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}/_stcore/health"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(base, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail("the workbench did not start")
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        time.sleep(1)
        with pytest.raises(httpx.HTTPError):  # nothing serves on the port any more
            httpx.get(base, timeout=2)
        # and no process of the session survives it (a child would have been re-parented to PID 1)
        survivors = subprocess.run(["pgrep", "-s", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert survivors == [], survivors
    finally:
        if proc.poll() is None:
            proc.kill()
        subprocess.run(["pkill", "-9", "-s", str(proc.pid)], check=False)
