"""Helpers shared by the serving tests and the reliability suite: a small MemAE,
numpy reference outputs, polling, REST calls, the generated protobuf code's check."""

import filecmp
import json
import pathlib
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import keras
import numpy as np

from memae_tf.models import build_autoencoder

FEATURES = 12


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class StandInServable:
    """Loads any version directory at once, for tests that need a version, not a SavedModel.

    Set as `memae_tf.serving.model_manager.Servable` (monkeypatch): a server's
    start, and a reload adding a model, wait until each model has a version
    available, as TF Serving's `ServerCore` does; an empty version directory
    then gives one at no cost.
    """

    def __init__(self, version: int, path: pathlib.Path, metrics=None) -> None:
        self.version, self.path = version, path

    def warm_up(self, iterations: int = 1, method_name_check: bool = False) -> int:
        return 0


def small_model(seed: int) -> keras.Model:
    """A dense MemAE on 12 features: fast to export, load and serve."""
    keras.utils.set_random_seed(seed)
    return build_autoencoder("kdd", "memae", input_shape=(FEATURES,), units=(8, 3),
                             num_items=10)


def exported_small_model(directory: pathlib.Path, seed: int,
                         name: str = "kdd") -> tuple[keras.Model, pathlib.Path]:
    """`small_model(seed)` and its model base path `directory/name`, exported as version 1."""
    from memae_tf.export import export_saved_model

    model = small_model(seed)
    base_path = directory / name
    export_saved_model(model, base_path, threshold=0.05)
    return model, base_path


def reference_outputs(model: keras.Model, x: np.ndarray) -> dict[str, np.ndarray]:
    """Scores computed in-process with numpy from the Keras model's reconstruction.

    A float32 error past 3.4e38 squares to inf without a warning, as in the served graph.
    """
    reconstruction = model(x, training=False).numpy()
    with np.errstate(over="ignore"):
        squared = (x - reconstruction) ** 2
        return {"reconstruction": reconstruction, "score_map": squared,
                "score": squared.mean(axis=1)}


def wait_for(condition, timeout: float = 120.0) -> None:
    """Polls `condition` until it holds; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def rest_call(port: int, method: str, path: str, body: object = None) -> tuple[int, dict]:
    """One REST request to 127.0.0.1:`port`: (HTTP status, decoded JSON body), errors included.

    `body` is sent as it is when it is bytes, as JSON otherwise.
    """
    data = None if body is None else (body if isinstance(body, bytes) else
                                      json.dumps(body).encode())
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                     method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def assert_generated_code_is_current(proto: pathlib.Path, scratch: pathlib.Path) -> None:
    """Runs `make proto`'s protoc command on `proto` (relative to the repository) into
    `scratch` and fails unless the committed `_pb2.py` and `_pb2.pyi` are identical."""
    root = pathlib.Path(__file__).resolve().parents[1]
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{root}", f"--python_out={scratch}",
         f"--pyi_out={scratch}", str(root / proto)],
        check=True, timeout=120,
    )
    for suffix in ("_pb2.py", "_pb2.pyi"):
        name = proto.with_name(proto.stem + suffix)
        assert filecmp.cmp(scratch / name, root / name, shallow=False), (
            f"{name} is out of date: run `make proto`"
        )


def random_rows(count: int, seed: int, columns: int = 3) -> np.ndarray:
    """`count` rows of standard normal values, the same for the same seed."""
    return np.random.default_rng(seed).normal(size=(count, columns))


def submit_concurrently(scheduler, signature, requests, key="model/1/serving_default",
                        timeouts=None) -> list:
    """Submits each request (rows of "x") to a batch scheduler from its own thread at
    once, with its timeout in ms where `timeouts` gives one; outputs or errors in order."""
    from memae_tf.serving.errors import ServingError

    timeouts = [0] * len(requests) if timeouts is None else timeouts
    answers = [None] * len(requests)
    barrier = threading.Barrier(len(requests))

    def one(index):
        barrier.wait()
        try:
            answers[index] = scheduler.submit(key, signature, {"x": requests[index]},
                                              timeouts[index])
        except ServingError as error:
            answers[index] = error

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return answers

