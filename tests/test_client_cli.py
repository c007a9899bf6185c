"""`memae monitor`'s inputs and settings without a server (tests/test_client_served.py runs it
against one)."""

import argparse
import json
from typing import ClassVar

import grpc
import numpy as np
import pytest

import memae_tf.client
from memae_tf.client import ModelInfo, cli
from memae_tf.client.cli import _credentials, add_monitor_command, main, read_rows

ROWS = np.arange(6, dtype=np.float32).reshape(3, 2)


def test_rows_are_read_from_a_npy_file_or_a_npz_files_x_or_only_array(tmp_path):
    np.save(tmp_path / "rows.npy", ROWS)
    np.savez(tmp_path / "named.npz", x=ROWS, labels=np.arange(3))
    np.savez(tmp_path / "single.npz", features=ROWS)
    for name in ("rows.npy", "named.npz", "single.npz"):
        np.testing.assert_array_equal(read_rows(tmp_path / name), ROWS)


def test_other_files_are_refused_saying_what_was_expected(tmp_path):
    np.savez(tmp_path / "two.npz", a=ROWS, b=ROWS)
    with pytest.raises(ValueError, match=r"an array named 'x' or a single array\. "
                                         r"Received: \['a', 'b'\]"):
        read_rows(tmp_path / "two.npz")
    (tmp_path / "rows.csv").write_text("0,1\n")
    with pytest.raises(ValueError, match=r"Expected a \.npy or \.npz file\. Received: .*rows"
                                         r"\.csv"):
        read_rows(tmp_path / "rows.csv")


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_monitor_command(parser.add_subparsers())
    return parser.parse_args(["monitor", "rows.npy", *argv])


def test_the_monitor_defaults_reach_the_shipped_server():
    # TF Serving's gRPC port (server.h grpc_port = 8500) and the shipped ConfigMap's
    # batching max_batch_size of 64; plaintext unless a certificate is given.
    # The report covers the last 10,000 scores (client/README.md, "window").
    args = _args()
    assert (args.target, args.max_batch_size, args.no_check_range, args.window) == (
        "localhost:8500", 64, False, 10_000)
    assert _credentials(args) is None


def test_the_command_is_required(capsys):
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 2 and "required: command" in capsys.readouterr().err


def test_tls_takes_a_ca_and_mutual_tls_needs_both_client_files(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"not checked until a channel connects")
    assert isinstance(_credentials(_args("--ca-cert", str(ca))), grpc.ChannelCredentials)
    for flag in ("--client-cert", "--client-key"):
        with pytest.raises(ValueError, match="needs both --client-cert and --client-key"):
            _credentials(_args(flag, str(ca)))


def test_an_object_array_file_is_refused_without_unpickling_it(tmp_path):
    # A pickle inside a .npy/.npz can run code when loaded (numpy.load's allow_pickle).
    objects = np.array([{"a": 1}, None], dtype=object)
    np.save(tmp_path / "objects.npy", objects, allow_pickle=True)
    np.savez(tmp_path / "objects.npz", x=objects)
    for name in ("objects.npy", "objects.npz"):
        with pytest.raises(ValueError, match="allow_pickle=False"):
            read_rows(tmp_path / name)


class _RecordingClient:
    """Stands in for MemAEClient: records its settings and the rows of each score call."""

    made: ClassVar[list] = []

    def __init__(self, target, model_name, **options):
        self.settings = {"target": target, "model_name": model_name, **options}
        self.calls = []
        _RecordingClient.made.append(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return None

    def model_info(self):
        return ModelInfo(version=1, input_range=(0.0, 1.0), threshold=0.5,
                         expected_rate=0.1, reference_quantiles=np.linspace(0.0, 1.0, 101))

    def score(self, rows):
        self.calls.append(len(rows))
        return np.where(np.arange(len(rows)) % 4 == 0, 0.9, 0.1).astype(np.float32)


def test_monitor_scores_each_file_in_calls_of_rows_and_prints_a_report_per_call(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(memae_tf.client, "MemAEClient", _RecordingClient)
    monkeypatch.setattr(_RecordingClient, "made", [])
    waits = []
    monkeypatch.setattr(cli.time, "sleep", waits.append)
    np.save(tmp_path / "a.npy", np.zeros((2500, 2), np.float32))
    np.save(tmp_path / "b.npy", np.zeros((3, 2), np.float32))
    code = main(["monitor", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "--target",
                 "example:9000", "--model-name", "m", "--no-check-range", "--deadline", "4"])
    assert code == 0
    (client,) = _RecordingClient.made
    assert client.calls == [1000, 1000, 500, 3]
    assert {key: client.settings[key] for key in ("target", "model_name", "check_range",
                                                   "deadline", "max_batch_size")} == {
        "target": "example:9000", "model_name": "m", "check_range": False, "deadline": 4.0,
        "max_batch_size": 64}
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["file"][-5:], line["rows"]) for line in lines] == [
        ("a.npy", 1000), ("a.npy", 1000), ("a.npy", 500), ("b.npy", 3)]
    # One score in four is above the threshold of 0.5, over every score so far.
    assert lines[0]["anomaly_rate"] == pytest.approx(0.25)
    assert waits == [0.0]  # no --hold: the gauges are not kept up after the last file
