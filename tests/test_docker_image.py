"""The memae-tf image's Dockerfile and build context, checked without Docker: hadolint,
the context as Docker would send it (.dockerignore) building the wheel, and the image's
user, version and base pinned as the Kubernetes manifests expect."""

import pathlib
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile

import yaml
from docker.utils.build import exclude_paths

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = pathlib.Path(sys.executable).with_name("hadolint")


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1])
            for line in lines if line and not line.startswith("#")]


def _stages() -> list[list[tuple[str, str]]]:
    stages = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _global_args() -> dict[str, str]:
    args = {}
    for instruction, value in _instructions():
        if instruction == "FROM":
            return args
        if instruction == "ARG":
            name, default = value.split("=", 1)
            args[name] = default
    return args


def _base_images() -> list[str]:
    images = []
    for stage in _stages():
        image = stage[0][1].split()[0]
        for name, value in _global_args().items():
            image = image.replace(f"${{{name}}}", value)
        images.append(image)
    return images


def _package_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def _pods_running_the_image() -> list[tuple[str, dict, dict]]:
    """(file, pod spec, container) of every manifest container running memae-tf."""
    found = []
    for path in sorted((ROOT / "serving" / "k8s").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            specs = []
            if doc and doc.get("kind") == "Job":
                specs = [doc["spec"]["template"]["spec"]]
            elif doc and doc.get("kind") == "TFJob":
                specs = [r["template"]["spec"] for r in doc["spec"]["tfReplicaSpecs"].values()]
            for spec in specs:
                found += [(path.name, spec, c) for c in spec["containers"]
                          if c["image"].split(":")[0] == "memae-tf"]
    return found


def test_dockerfile_passes_hadolint():
    result = subprocess.run([str(HADOLINT), "--no-color", str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (0, ""), result.stdout + result.stderr


def test_hadolint_reports_an_unpinned_base_and_a_cached_pip_install():
    """Guard: the linter the test above runs is the real one, with its rules."""
    result = subprocess.run([str(HADOLINT), "--no-color", "-"], capture_output=True,
                            text=True, timeout=60,
                            input="FROM python:latest\nRUN pip install numpy\n")
    assert result.returncode == 1
    assert {"DL3007", "DL3013", "DL3042"} <= set(re.findall(r"DL\d{4}", result.stdout))


def test_build_context_holds_what_the_wheel_is_built_from(tmp_path):
    """Copies the files Docker would send (docker-py applies .dockerignore as the
    Docker CLI does), builds the wheel from them as the build stage does, offline."""
    patterns = [line for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    context = sorted(exclude_paths(str(ROOT), patterns, dockerfile="Dockerfile"))
    top = {path.split("/")[0] for path in context}
    assert top == {"Dockerfile", ".dockerignore", "pyproject.toml", "README.md", "LICENSE",
                   "memae_tf"}
    assert not [path for path in context if "__pycache__" in path or path.endswith(".pyc")]
    for path in context:
        if (ROOT / path).is_file():
            (tmp_path / "context" / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / path, tmp_path / "context" / path)
    for instruction, value in _instructions():
        if instruction == "COPY" and not value.startswith("--from"):
            for source in value.split()[:-1]:
                assert (tmp_path / "context" / source).exists(), source

    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", str(tmp_path / "wheels"),
                    str(tmp_path / "context")], check=True, timeout=300)
    (wheel,) = (tmp_path / "wheels").glob("*.whl")
    assert wheel.name.startswith(f"memae_tf-{_package_version()}-")
    names = set(zipfile.ZipFile(wheel).namelist())
    packaged = {str(p.relative_to(ROOT)) for p in (ROOT / "memae_tf").rglob("*")
                if p.suffix in (".py", ".proto", ".pyi") and "__pycache__" not in p.parts}
    assert packaged <= names
    # PEP 639 (`license-files`): the wheel carries the repository's LICENSE.
    (license_file,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    assert zipfile.ZipFile(wheel).read(license_file) == (ROOT / "LICENSE").read_bytes()
    # The image's ENTRYPOINT and the Jobs' `command: [memae, ...]`.
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert "memae = memae_tf.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    (_, runtime) = _stages()
    assert ("ENTRYPOINT", '["memae"]') in runtime


def test_base_image_is_one_pinned_python_release_the_package_supports():
    (image,) = set(_base_images())
    match = re.fullmatch(r"python:(\d+)\.(\d+)\.(\d+)-slim-[a-z]+", image)
    assert match, image
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "requires-python"]
    low, high = re.fullmatch(r">=(\d+\.\d+),<(\d+\.\d+)", requires).groups()
    version = (int(match[1]), int(match[2]))
    assert tuple(map(int, low.split("."))) <= version < tuple(map(int, high.split(".")))
    labels = " ".join(v for i, v in _instructions() if i == "LABEL")
    assert f'org.opencontainers.image.base.name="docker.io/library/{image}"' in labels


def test_runtime_stage_copies_the_environment_and_installs_nothing():
    build, runtime = _stages()
    assert build[0][1].split()[-2:] == ["AS", "build"]
    copies = [v for i, v in runtime if i == "COPY"]
    assert copies == ["--from=build /opt/memae /opt/memae"]
    for instruction, value in runtime:
        if instruction == "RUN":
            assert not re.search(r"\b(pip|apt-get|apt|gcc|make)\b", value), value


def test_image_runs_as_the_user_of_the_pods_that_run_it():
    (_, runtime) = _stages()
    (user,) = [v for i, v in runtime if i == "USER"]
    uid, gid = map(int, user.split(":"))
    assert uid != 0 and gid != 0
    pods = _pods_running_the_image()
    assert {name for name, _, _ in pods} == {"job-indexed.yaml", "tfjob.yaml", "job.yaml"}
    for name, spec, _ in pods:
        context = spec["securityContext"]
        assert (context["runAsUser"], context["runAsGroup"], context["runAsNonRoot"]) == (
            uid, gid, True), name


def test_image_version_label_and_manifest_tags_follow_the_package_version():
    (_, runtime) = _stages()
    (version_arg,) = [v for i, v in runtime if i == "ARG" and v.startswith("VERSION=")]
    assert version_arg == f"VERSION={_package_version()}"
    labels = " ".join(v for i, v in runtime if i == "LABEL")
    assert 'org.opencontainers.image.version="${VERSION}"' in labels
    assert {c["image"] for _, _, c in _pods_running_the_image()} == {
        f"memae-tf:{_package_version()}"}
