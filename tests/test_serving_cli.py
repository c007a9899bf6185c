"""The `export` and `serve` subcommands registered by `add_serving_commands`."""

import argparse
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tensorflow as tf

from memae_tf import MemAE
from memae_tf.cli import add_serving_commands
from memae_tf.client import MemAEClient, NotFoundError, UnavailableError


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="memae")
    add_serving_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


@pytest.fixture(scope="module")
def saved_detector(tmp_path_factory):
    rows = np.random.default_rng(0).uniform(size=(64, 12)).astype("float32")
    detector = MemAE.from_preset("kdd", input_shape=(12,), units=(8, 3), num_items=10)
    detector.infer_threshold(rows, fpr=0.5)
    path = detector.save(tmp_path_factory.mktemp("run") / "detector.keras")
    return path, rows


def test_export_command_writes_a_version_scoring_like_the_detector(saved_detector, tmp_path):
    path, rows = saved_detector
    args = _parse(["export", "--model", str(path), "--model-base-path", str(tmp_path / "kdd")])
    assert args.func(args) == 0
    loaded = tf.saved_model.load(str(tmp_path / "kdd" / "1"))
    served = loaded.signatures["serving_default"](x=tf.constant(rows))
    detector = MemAE.load(path)
    np.testing.assert_allclose(served["score"].numpy(), detector.score(rows), rtol=1e-5)
    np.testing.assert_array_equal(served["is_anomaly"].numpy(), detector.predict(rows) == 1)
    assert (tmp_path / "models.config").is_file()


def test_export_command_refuses_a_detector_without_threshold(tmp_path):
    detector = MemAE.from_preset("kdd", input_shape=(12,), units=(8, 3), num_items=10)
    path = detector.save(tmp_path / "detector.keras")
    args = _parse(["export", "--model", str(path), "--model-base-path", str(tmp_path / "kdd")])
    with pytest.raises(ValueError, match="`threshold`, expected a finite float"):
        args.func(args)


def test_the_detector_refuses_to_export_without_threshold_as_the_command_does(tmp_path):
    detector = MemAE.from_preset("kdd", input_shape=(12,), units=(8, 3), num_items=10)
    with pytest.raises(ValueError, match="`threshold`, expected a finite float"):
        detector.export(tmp_path / "kdd")
    assert not (tmp_path / "kdd" / "1").exists()


def test_serve_command_defaults_follow_tf_serving():
    args = _parse(["serve", "--model-base-path", "models/memae"])
    assert (args.port, args.rest_port, args.model_name) == (8500, None, None)


@pytest.mark.slow
def test_serve_command_serves_until_sigterm(saved_detector, tmp_path):
    path, rows = saved_detector
    args = _parse(["export", "--model", str(path), "--model-base-path", str(tmp_path / "kdd")])
    args.func(args)
    script = textwrap.dedent(
        """
        import argparse, socket, sys
        from memae_tf.cli import add_serving_commands

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        print(port, flush=True)
        parser = argparse.ArgumentParser()
        add_serving_commands(parser.add_subparsers(dest="command"))
        args = parser.parse_args(["serve", "--model-base-path", sys.argv[1],
                                  "--host", "127.0.0.1", "--port", str(port), "--grace", "7"])
        sys.exit(args.func(args))
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "kdd")],
                               stdout=subprocess.PIPE, stderr=log, env=env, text=True)
    try:
        port = int(process.stdout.readline())
        with MemAEClient(f"127.0.0.1:{port}", "kdd", retries=8, timeout=30) as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    scores = client.score(rows)
                    break
                except (UnavailableError, NotFoundError):
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
        np.testing.assert_allclose(scores, MemAE.load(path).score(rows), rtol=1e-5)
        # With nothing in flight the drain ends at once, and the command returns 0 (TF
        # Serving's server has no SIGTERM handler: tensorflow/serving#1853). The wait
        # only bounds a hang; test_serving checks the drain itself.
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=300) == 0
    finally:
        process.kill()
        log.close()
    # The drain took --grace's 7 s as its limit, and ended.
    assert re.search(r"Stopping: draining requests in flight for up to 7 s\.\n.*Stopped\.\n",
                     (tmp_path / "serve.log").read_text())
