"""deploy/: the docker-compose file as docker-compose resolves it, and every
command line in it accepted by the real binaries.

No container engine runs here: `docker-compose config` (Debian's package)
parses, validates and interpolates the file; the test then checks what it
resolved to and runs each duet command with --check-config against the
project's own model, mounted paths mapped back to the host directory.
"""
import os
import pathlib
import re
import shlex
import shutil
import subprocess

import pytest
import yaml

from conftest import build_dir

SOURCE = pathlib.Path(os.environ.get("DUET_SOURCE_DIR", pathlib.Path(__file__).parents[2]))
DEPLOY = SOURCE / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
MODEL_DIR = (build_dir() / "models" / "duet-tiny-qwen3").resolve()
BINARIES = {
    "duet": build_dir() / "tools" / "duet" / "duet",
    "duet-router": build_dir() / "router" / "duet-router",
    "duet-worker": build_dir() / "worker" / "duet-worker",
}
DUET_SERVICES = {
    "gpu": {"router", "worker-0", "worker-1"},
    "cpu": {"router", "worker-0-cpu", "worker-1-cpu"},
}
API_KEY = "compose-test-key"


def compose_config(profile, **env):
    run_env = dict(os.environ, DUET_MODEL_DIR=str(MODEL_DIR), DUET_API_KEY=API_KEY)
    run_env.update(env)
    result = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "--profile", profile, "config"],
        capture_output=True, text=True, env=run_env, cwd=DEPLOY, timeout=60)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def active(config, profile):
    """Services docker-compose starts under this profile."""
    return {name: service for name, service in config["services"].items()
            if not service.get("profiles") or profile in service["profiles"]}


def flag(command, name):
    prefix = f"--{name}="
    values = [arg[len(prefix):] for arg in command if arg.startswith(prefix)]
    assert len(values) == 1, f"--{name} in {command}"
    return values[0]


def seconds(text):
    match = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", str(text))
    assert match and text, text
    return int(match.group(1) or 0) * 60 + int(match.group(2) or 0)


@pytest.fixture(scope="module", autouse=True)
def needs_docker_compose():
    if shutil.which("docker-compose") is None:
        pytest.fail("docker-compose is missing: scripts/setup.sh installs it")


@pytest.fixture(scope="module", params=["gpu", "cpu"])
def profile(request):
    return request.param


@pytest.fixture(scope="module")
def services(profile):
    return active(compose_config(profile), profile)


def test_each_profile_starts_a_router_two_workers_and_open_webui(services, profile):
    assert set(services) == DUET_SERVICES[profile] | {"open-webui"}


def test_only_the_router_and_open_webui_publish_ports(services):
    published = {name: sorted(p["target"] for p in service.get("ports", []))
                 for name, service in services.items()}
    assert published["router"] == [8000, 50051]
    assert published["open-webui"] == [8080]
    assert all(not ports for name, ports in published.items() if "worker" in name)


def test_workers_are_on_the_internal_network_only(services, profile):
    config = compose_config(profile)
    assert config["networks"]["workers"].get("internal") is True
    assert not config["networks"]["frontend"].get("internal", False)
    for name, service in services.items():
        if "worker" in name:
            assert set(service["networks"]) == {"workers"}, name
    assert set(services["router"]["networks"]) == {"frontend", "workers"}
    assert set(services["open-webui"]["networks"]) == {"frontend"}


def workers_in_rank_order(services):
    router_command = services["router"]["command"]
    addresses = flag(router_command, "workers").split(",")
    by_alias = {}
    for name, service in services.items():
        if "worker" in name:
            for alias in service["networks"]["workers"]["aliases"]:
                by_alias[alias] = (name, service)
    ordered = []
    for address in addresses:
        host, port = address.rsplit(":", 1)
        assert host in by_alias, f"{host} is no worker's name on the workers network"
        name, service = by_alias[host]
        assert flag(service["command"], "port") == port
        assert flag(service["command"], "collective-host") == host
        ordered.append((name, service))
    return ordered


def test_the_router_names_every_worker_by_the_address_it_listens_on(services):
    ordered = workers_in_rank_order(services)
    assert len(ordered) == 2
    assert {name for name, _ in ordered} == {n for n in services if "worker" in n}


def test_gpu_workers_each_reserve_their_own_gpu(services, profile):
    reserved = []
    for name, service in workers_in_rank_order(services):
        devices = (service.get("deploy", {}).get("resources", {})
                   .get("reservations", {}).get("devices", []))
        if profile == "cpu":
            assert devices == [], name
            continue
        assert len(devices) == 1, name
        assert devices[0]["driver"] == "nvidia"
        assert devices[0]["capabilities"] == ["gpu"]
        assert len(devices[0]["device_ids"]) == 1
        reserved.append(devices[0]["device_ids"][0])
    if profile == "gpu":
        assert reserved == ["0", "1"], "rank r owns GPU r"


def test_workers_get_shared_memory_for_nccl_host_transport(services):
    for name, service in services.items():
        if "worker" in name:
            size = str(service["shm_size"])
            match = re.fullmatch(r"(\d+)([gm])b?", size.lower())
            assert match, size
            mib = int(match.group(1)) * (1024 if match.group(2) == "g" else 1)
            assert mib >= 1024, f"{name}: shm_size {size}"


def test_restart_healthchecks_and_drain_grace(services):
    for name in services:
        assert services[name]["restart"] == "on-failure", name
    for name in services.keys() - {"open-webui"}:
        test = services[name]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "duet", "healthcheck"], name
    drain = float(flag(services["router"]["command"], "shutdown-timeout"))
    assert seconds(services["router"]["stop_grace_period"]) > drain
    assert services["open-webui"]["depends_on"] == {"router": {"condition": "service_healthy"}}


def test_the_model_is_mounted_read_only_where_the_router_tells_the_workers(services):
    model_path = flag(services["router"]["command"], "model")
    for name in DUET_SERVICES["gpu"] & services.keys() | DUET_SERVICES["cpu"] & services.keys():
        mounts = [v for v in services[name]["volumes"] if v.endswith(":ro")]
        assert mounts == [f"{MODEL_DIR}:{model_path}:ro"], name


def test_the_api_key_comes_from_the_environment(profile):
    services = active(compose_config(profile), profile)
    assert services["router"]["environment"]["DUET_API_KEY"] == API_KEY
    assert services["open-webui"]["environment"]["OPENAI_API_KEY"] == API_KEY
    assert not any(API_KEY in arg for arg in services["router"]["command"]), "not in the process list"
    keyless = active(compose_config(profile, DUET_API_KEY=""), profile)
    assert keyless["router"]["environment"]["DUET_API_KEY"] == ""


def test_open_webui_talks_to_the_routers_openai_api(services):
    port = flag(services["router"]["command"], "port")
    assert services["open-webui"]["environment"]["OPENAI_API_BASE_URL"] == f"http://router:{port}/v1"


def test_a_missing_model_directory_is_a_clear_error():
    env = {k: v for k, v in os.environ.items() if k != "DUET_MODEL_DIR"}
    result = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config"],
                            capture_output=True, text=True, env=env, cwd=DEPLOY, timeout=60)
    assert result.returncode != 0
    assert "DUET_MODEL_DIR" in result.stderr


# --- the command lines, run by the real binaries --------------------------

def host_command(service):
    """The service's command with container paths under its read-only
    mounts mapped to the host directories they come from."""
    mounts = [v.rsplit(":", 2)[:2] for v in service.get("volumes", []) if v.endswith(":ro")]
    command = []
    for arg in service["command"]:
        for source, target in mounts:
            arg = re.sub(rf"(?<==){re.escape(target)}(?=/|$)", source, arg)
        command.append(arg)
    program = command[0]
    assert program in BINARIES, program
    return [str(BINARIES[program])] + command[1:]


def run(command, env=None):
    return subprocess.run(command, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, **(env or {})))


@pytest.fixture(scope="module", autouse=True)
def built():
    missing = [str(path) for path in BINARIES.values() if not path.exists()]
    if missing or not (MODEL_DIR / "config.json").exists():
        pytest.skip(f"not built: {missing or MODEL_DIR}")


def test_every_duet_command_passes_check_config(services):
    for name in services.keys() - {"open-webui"}:
        service = services[name]
        command = host_command(service)
        result = run(command + ["--check-config"], env=service.get("environment") or {})
        assert result.returncode == 0, f"{name}: {shlex.join(command)}\n{result.stderr}"
        if name == "router":
            assert "2 workers" in result.stdout and "1 API key" in result.stdout, result.stdout


def test_the_doctor_service_runs_duet_doctor_on_every_gpu():
    services = active(compose_config("doctor"), "doctor")
    assert set(services) == {"router", "open-webui", "doctor"}, "only with --profile doctor"
    doctor = services["doctor"]
    devices = doctor["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert doctor["build"]["dockerfile"] == "deploy/Dockerfile"
    # Here, without a GPU, the same command checks the CPU path and the fit.
    result = run(host_command(doctor) + ["--skip-bandwidth"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no NVIDIA GPU found" in result.stdout and "model fit" in result.stdout


def test_check_config_rejects_what_the_binaries_would_reject(services):
    router = host_command(services["router"])
    worker = host_command(services[next(n for n in services if "worker" in n)])
    assert run(router + ["--check-config", "--workers-wait=-1"]).returncode != 0
    assert run(router + ["--check-config", "--no-such-flag=1"]).returncode != 0
    assert run(worker + ["--check-config", "--no-such-flag=1"]).returncode != 0
    missing_model = [a if not a.startswith("--model=") else "--model=/nonexistent" for a in router]
    assert run(missing_model + ["--check-config"]).returncode != 0


def test_every_healthcheck_command_is_accepted(services):
    # Nothing listens there: an accepted command reports "unhealthy" (1), a
    # rejected one exits 2.
    for name in services.keys() - {"open-webui"}:
        test = services[name]["healthcheck"]["test"]
        command = [str(BINARIES["duet"])] + test[2:] + ["--timeout=0.5"]
        command = [re.sub(r":(8000|50061)\b", ":9", arg) for arg in command]
        result = run(command)
        assert result.returncode == 1, f"{name}: {shlex.join(command)}\n{result.stderr}"
        assert "unhealthy" in result.stderr


# --- the images ---------------------------------------------------------------

@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.cpu"])
def test_the_images_install_binaries_the_build_makes(dockerfile):
    text = (DEPLOY / dockerfile).read_text()
    targets = re.search(r"--target ([\w\- ]+)", text).group(1).split()
    assert {"duet", "duet-router", "duet-worker"} <= set(targets)
    installed = re.search(r"install -D -t /opt/duet/bin ((?:/build/\S+\s*\\?\s*)+)", text).group(1)
    paths = re.findall(r"/build/(\S+)", installed)
    assert len(paths) == len(targets)
    for path in paths:
        assert (build_dir() / path).is_file(), f"{dockerfile} installs /build/{path}"
    compose_images = {s.get("build", {}).get("dockerfile") for s in
                      compose_config("gpu")["services"].values()}
    assert f"deploy/{dockerfile}" in compose_images


def test_runtime_packages_cover_every_library_the_binaries_load():
    result = run([str(DEPLOY / "runtime-packages.sh")] + [str(p) for p in BINARIES.values()])
    assert result.returncode == 0, result.stderr
    packages = result.stdout.split()
    assert any(p.startswith("libgrpc++") for p in packages), packages
    assert any(p.startswith("libprotobuf") for p in packages), packages
    # Only a hand-unpacked CUDA toolkit may own no package.
    for line in result.stderr.splitlines():
        assert "/usr/local/cuda" in line, line
