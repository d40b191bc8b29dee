#!/usr/bin/env python3
"""Checks of docker/ that need no Docker engine, run by DeploymentTests.swift.

No Docker engine runs where the tests run, so the image is never built here.
What can be checked without one is checked against the real files:

  libraries   every shared library `ldd` reports for the release binary is
              provided by a package the Dockerfile's runtime stage installs
              (or one those packages depend on), or by the base image
              (Tests/Deploy/bookworm-slim-packages.txt); the binary's own
              NEEDED libraries come from packages installed by name or from
              the base image; no Swift runtime library is loaded (the image
              has none: the binary must be built with --static-swift-stdlib);
              and every package the runtime stage installs provides at least
              one of those libraries.
  dockerfile  the Dockerfile's instructions agree with each other, with the
              Makefile and with the toolchain: builder image tag, build flags,
              build packages, ENV, EXPOSE, VOLUME, USER, STOPSIGNAL,
              HEALTHCHECK, ENTRYPOINT.
  env         prints the runtime stage's ENV, USER and HEALTHCHECK as JSON
              (what DeploymentTests runs the binary with).
  compose     docker-compose.yml parses (PyYAML) and names only files,
              services and volumes that exist; healthchecks, ports and
              depends_on are there; it agrees with docker/nginx.conf, the
              demo app's configuration and the Dockerfile.

Assumptions, stated where they are used: the machine running this is Debian
12 (bookworm), like both stages of the Dockerfile, so `dpkg -S` here names the
packages the image would install; the base image holds exactly the packages
in bookworm-slim-packages.txt.

Each check prints what it found, then "OK" (exit 0) or every problem
(exit 1). Exit 2: the check could not run (bad arguments, missing tools).
"""

import argparse
import ipaddress
import json
import os
import re
import shlex
import struct
import subprocess
import sys

# --- Dockerfile ----------------------------------------------------------------


class Instruction:
    def __init__(self, keyword, arguments, line):
        self.keyword = keyword
        self.arguments = arguments
        self.line = line

    def json_arguments(self):
        """The exec-form (JSON array) arguments, or None for shell form."""
        text = self.arguments.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                return None
            if isinstance(value, list) and all(isinstance(item, str) for item in value):
                return value
        return None


class Stage:
    def __init__(self, base, name, line):
        self.base = base
        self.name = name
        self.line = line
        self.instructions = []

    def all(self, keyword):
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword):
        found = self.all(keyword)
        return found[-1] if found else None


def parse_dockerfile(text):
    """Stages of a Dockerfile: logical lines (continuations joined, comment
    lines dropped, as Docker does), split at each FROM."""
    stages = []
    logical = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not logical:
            start = number
        if stripped.startswith("#") or (not stripped and logical):
            continue
        if not stripped:
            continue
        if stripped.endswith("\\"):
            logical += stripped[:-1] + " "
            continue
        logical += stripped
        keyword, _, arguments = logical.partition(" ")
        keyword = keyword.upper()
        arguments = arguments.strip()
        if keyword == "FROM":
            words = arguments.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0] if words else "", name, start))
        elif stages:
            stages[-1].instructions.append(Instruction(keyword, arguments, start))
        logical = ""
    return stages


def shell_commands(script):
    """The simple commands of a RUN line, as word lists (split at && || ; |)."""
    commands = []
    for part in re.split(r"&&|\|\||;|\|", script):
        try:
            words = shlex.split(part)
        except ValueError:
            words = part.split()
        while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
            words = words[1:]
        if words:
            commands.append(words)
    return commands


def apt_installed(stage):
    """Packages named by `apt-get install` in the stage's RUN lines (version pins dropped)."""
    packages = []
    for run in stage.all("RUN"):
        for words in shell_commands(run.arguments):
            if words[0] in ("apt-get", "apt") and "install" in words:
                for word in words[words.index("install") + 1:]:
                    if not word.startswith("-"):
                        packages.append(word.split("=")[0])
    return packages


def stage_env(stage):
    """ENV of a stage, in order (KEY=value pairs, or the legacy `ENV KEY value`)."""
    env = {}
    for instruction in stage.all("ENV"):
        words = shlex.split(instruction.arguments)
        if words and "=" not in words[0]:
            env[words[0]] = " ".join(words[1:])
            continue
        for word in words:
            key, _, value = word.partition("=")
            env[key] = value
    return env


def stage_list(stage, keyword):
    """Every value of EXPOSE or VOLUME lines (JSON or space-separated)."""
    values = []
    for instruction in stage.all(keyword):
        values += instruction.json_arguments() or instruction.arguments.split()
    return values


def load_dockerfile(path):
    with open(path, encoding="utf-8") as handle:
        stages = parse_dockerfile(handle.read())
    if len(stages) < 2:
        raise SystemExit(f"{path}: expected a builder stage and a runtime stage, found {len(stages)} stage(s)")
    return stages


def healthcheck_command(stage):
    instruction = stage.last("HEALTHCHECK")
    if instruction is None:
        return None
    _, _, command = instruction.arguments.partition("CMD")
    return Instruction("CMD", command.strip(), instruction.line).json_arguments()


# --- Packages ----------------------------------------------------------------


def run(command):
    result = subprocess.run(command, capture_output=True, text=True)
    return result.returncode, result.stdout, result.stderr


def path_variants(path):
    """`path`, its real path, and their /usr-merged twins: bookworm ships
    libraries in /usr/lib, while ldd often prints /lib."""
    variants = []
    for variant in (path, os.path.realpath(path)):
        variants.append(variant)
        if variant.startswith("/usr/lib/") or variant.startswith("/usr/lib64/"):
            variants.append(variant[len("/usr"):])
        elif variant.startswith("/lib/") or variant.startswith("/lib64/"):
            variants.append("/usr" + variant)
    return variants


def owning_packages(paths):
    """The Debian packages owning each path (by any of its variants), from one `dpkg -S` call."""
    candidates = sorted({variant for path in paths for variant in path_variants(path)})
    _, out, _ = run(["dpkg", "-S"] + candidates)  # exits 1 when some candidate is not found
    owners = {}
    for line in out.splitlines():
        names, separator, owned = line.partition(": ")
        if separator and not line.startswith("diversion "):
            owners[owned.strip()] = [name.split(":")[0].strip() for name in names.split(",")]
    return {path: next((owners[v] for v in path_variants(path) if v in owners), []) for path in paths}


def package_dependencies(package):
    """Names in a package's Depends and Pre-Depends, as lists of alternatives.
    From the local dpkg database (the package is installed here), else from
    apt's cache; None when neither knows it."""
    status, out, _ = run(["dpkg-query", "-W", "-f=${Depends}, ${Pre-Depends}", package])
    if status == 0:
        fields = out
    else:
        status, out, _ = run(["apt-cache", "depends", "--no-recommends", "--no-suggests", "--no-conflicts",
                              "--no-breaks", "--no-replaces", "--no-enhances", package])
        if status != 0:
            return None
        fields = ", ".join(line.split(":", 1)[1].strip() for line in out.splitlines()
                           if line.strip().startswith(("Depends:", "PreDepends:", "|Depends:")))
    groups = []
    for group in fields.split(","):
        alternatives = [re.sub(r"\s*\(.*?\)", "", alt).strip().split(":")[0] for alt in group.split("|")]
        alternatives = [alt for alt in alternatives if alt]
        if alternatives:
            groups.append(alternatives)
    return groups


def dependency_closure(installed, base, problems):
    """What apt-get install brings in: each package and, recursively, what it
    depends on (the first alternative, unless one is already present)."""
    brought = {}  # package -> the installed package that brought it
    pending = [(package, package) for package in installed]
    while pending:
        package, root = pending.pop()
        if package in brought:
            continue
        brought[package] = root
        groups = package_dependencies(package)
        if groups is None:
            problems.append(f"cannot resolve the dependencies of {package} (neither dpkg nor apt-cache knows it)")
            continue
        for alternatives in groups:
            if any(alt in brought or alt in base for alt in alternatives):
                continue
            pending.append((alternatives[0], root))
    return brought


def ldd(binary):
    status, out, err = run(["ldd", binary])
    if status != 0:
        raise SystemExit(f"ldd {binary} failed: {err.strip() or out.strip()}")
    libraries = []
    for line in out.splitlines():
        line = line.strip()
        if "=>" in line:
            name, _, rest = line.partition("=>")
            rest = rest.strip()
            path = None if rest.startswith("not found") else rest.split(" (")[0].strip() or None
            libraries.append((name.strip(), path))
        elif line.startswith("/"):
            path = line.split(" (")[0]
            libraries.append((os.path.basename(path), path))
        # linux-vdso.so.1 and friends: provided by the kernel.
    return libraries


def needed(binary):
    """DT_NEEDED entries of an ELF64 little-endian file (the binary's direct dependencies)."""
    with open(binary, "rb") as handle:
        data = handle.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise SystemExit(f"{binary}: not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + index * shentsize) for index in range(shnum)]
    names = []
    for section in sections:
        if section[1] != 6:  # SHT_DYNAMIC
            continue
        strtab = sections[section[6]]
        offset, size = section[4], section[5]
        for entry in range(0, size, 16):
            tag, value = struct.unpack_from("<qQ", data, offset + entry)
            if tag == 0:
                break
            if tag == 1:  # DT_NEEDED
                start = strtab[4] + value
                names.append(data[start:data.index(b"\0", start)].decode())
    return names


def read_list(path):
    with open(path, encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip() and not line.startswith("#")]


def check_host_is_bookworm(problems):
    try:
        with open("/etc/os-release", encoding="utf-8") as handle:
            release = dict(line.rstrip("\n").split("=", 1) for line in handle if "=" in line)
    except OSError:
        release = {}
    codename = release.get("VERSION_CODENAME", "").strip('"')
    if codename != "bookworm":
        problems.append(f"this machine is not Debian 12 (VERSION_CODENAME={codename or '?'}): the packages "
                        "found here need not be the ones the bookworm image installs")


def check_libraries(args):
    problems = []
    check_host_is_bookworm(problems)
    stages = load_dockerfile(args.dockerfile)
    runtime = stages[-1]
    if runtime.base != "debian:bookworm-slim":
        problems.append(f"the runtime stage starts FROM {runtime.base}; {args.base_packages} lists debian:bookworm-slim")
    installed = apt_installed(runtime)
    base = set(read_list(args.base_packages))
    print(f"runtime stage installs: {' '.join(installed) or '(nothing)'}")
    closure = dependency_closure(installed, base, problems)

    libraries = ldd(args.binary)
    direct = set(needed(args.binary))
    swift_runtime = re.compile(r"^lib(swift|Foundation|_Foundation|dispatch|BlocksRuntime|icu)")
    used = set()
    owners_by_path = owning_packages([path for _, path in libraries if path])
    print(f"{'library':<28} {'package':<16} provided by")
    for name, path in libraries:
        if path is None:
            problems.append(f"{name}: not found by ldd on this machine")
            continue
        if swift_runtime.match(name):
            problems.append(f"{name} ({path}) is a Swift runtime library: the image has none; "
                            "build with --static-swift-stdlib (make build does)")
            continue
        owners = owners_by_path[path]
        if not owners:
            problems.append(f"{name} ({path}) belongs to no Debian package")
            continue
        package = owners[0]
        if package in installed:
            how = "the runtime stage (apt-get install)"
            used.add(package)
        elif package in base:
            how = "debian:bookworm-slim"
        elif package in closure:
            how = f"the runtime stage, as a dependency of {closure[package]}"
            used.add(closure[package])
        else:
            how = None
            problems.append(f"{name} ({path}, package {package}) is neither installed by the runtime stage "
                            "(nor a dependency of what it installs) nor part of debian:bookworm-slim")
        if name in direct and how is not None and package not in installed and package not in base:
            problems.append(f"{name} is linked by the binary itself, but {package} is only installed as a "
                            f"dependency of {closure[package]}: install it by name")
        print(f"{name:<28} {package:<16} {how or 'NOTHING'}{'' if name not in direct else '  (NEEDED)'}")
    for package in installed:
        if package not in used:
            problems.append(f"the runtime stage installs {package}, which provides no library the binary loads")
    return report(problems)


# --- Dockerfile consistency --------------------------------------------------

SETTING = re.compile(r"GATEHOUSE_[A-Z0-9_]+")


def known_settings(binary):
    status, out, err = run([binary, "--help"])
    if status != 0:
        raise SystemExit(f"{binary} --help failed: {err.strip()}")
    return set(SETTING.findall(out))


def makefile_variable(path, name):
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            match = re.match(rf"^{name}\s*:?=\s*(.*)$", line)
            if match:
                return match.group(1).split()
    return None


def toolchain_version():
    status, out, _ = run([os.environ.get("SWIFT", "swift"), "--version"])
    match = re.search(r"Swift version (\d+\.\d+(?:\.\d+)?)", out)
    if status != 0 or not match:
        raise SystemExit("could not read the version from `swift --version`")
    return match.group(1)


def check_dockerfile(args):
    problems = []
    stages = load_dockerfile(args.dockerfile)
    builder, runtime = stages[0], stages[-1]

    version = toolchain_version()
    expected = f"swift:{version}-bookworm"
    print(f"builder: FROM {builder.base} AS {builder.name}  (toolchain here: Swift {version})")
    if builder.base != expected:
        problems.append(f"the builder stage starts FROM {builder.base}; the toolchain here is {version}: use {expected}")
    if builder.name is None:
        problems.append("the builder stage has no name (FROM ... AS builder)")

    build_packages = makefile_variable(args.makefile, "BUILD_PACKAGES") or []
    missing = sorted(set(build_packages) - set(apt_installed(builder)))
    if missing:
        problems.append(f"the builder stage does not install {' '.join(missing)} (Makefile BUILD_PACKAGES)")

    flags = makefile_variable(args.makefile, "RELEASE_BUILD_FLAGS")
    if not flags:
        problems.append("the Makefile defines no RELEASE_BUILD_FLAGS (the flags of make build)")
        flags = []
    builds = [words for run_line in builder.all("RUN") for words in shell_commands(run_line.arguments)
              if words[:2] == ["swift", "build"] and "--show-bin-path" not in words]
    if not builds:
        problems.append("the builder stage runs no `swift build`")
    for words in builds:
        joined = " ".join(words)
        print(f"builder runs: {joined}")
        for flag in flags + ["--static-swift-stdlib"]:
            if flag not in joined.split() and flag not in joined:
                problems.append(f"`{joined}` lacks {flag} (make build uses {' '.join(flags)})")
    if "--static-swift-stdlib" not in flags:
        problems.append("make build (RELEASE_BUILD_FLAGS) does not use --static-swift-stdlib like the image")

    print(f"runtime: FROM {runtime.base}")
    if runtime.base != "debian:bookworm-slim":
        problems.append(f"the runtime stage starts FROM {runtime.base}, not debian:bookworm-slim")
    copies = [c for c in runtime.all("COPY") if c.arguments.startswith(f"--from={builder.name}")]
    if not any(c.arguments.split()[-1] in ("/usr/local/bin/gatehouse", "/usr/local/bin/") for c in copies):
        problems.append("the runtime stage does not COPY the binary from the builder to /usr/local/bin/gatehouse")

    env = stage_env(runtime)
    print(f"ENV: {json.dumps(env)}")
    settings = known_settings(args.binary)
    for key in env:
        if key.startswith("GATEHOUSE_") and key not in settings:
            problems.append(f"ENV {key} is not a setting `gatehouse --help` lists")
    if env.get("GATEHOUSE_HOST") != "0.0.0.0":
        problems.append("ENV GATEHOUSE_HOST must be 0.0.0.0 (127.0.0.1 is unreachable from outside the container)")
    port = env.get("GATEHOUSE_PORT", "8080")
    data = env.get("GATEHOUSE_DATA_DIR")
    if not data or not data.startswith("/"):
        problems.append("ENV GATEHOUSE_DATA_DIR must be an absolute path (the volume)")

    exposed = [value.split("/")[0] for value in stage_list(runtime, "EXPOSE")]
    print(f"EXPOSE: {' '.join(exposed)}  VOLUME: {' '.join(stage_list(runtime, 'VOLUME'))}")
    if exposed != [port]:
        problems.append(f"EXPOSE {' '.join(exposed) or '(none)'} does not match GATEHOUSE_PORT {port}")
    if data and data not in stage_list(runtime, "VOLUME"):
        problems.append(f"GATEHOUSE_DATA_DIR {data} is not a VOLUME")
    if data and not any("chown" in r.arguments and data in r.arguments for r in runtime.all("RUN")):
        problems.append(f"no RUN creates {data} owned by the service's user (chown) before VOLUME")

    user = runtime.last("USER")
    print(f"USER: {user.arguments if user else '(none)'}")
    if user is None:
        problems.append("the runtime stage sets no USER: the service would run as root")
    elif user.arguments.split(":")[0] in ("root", "0"):
        problems.append(f"USER {user.arguments} is root")

    signal = runtime.last("STOPSIGNAL")
    if signal is None or signal.arguments not in ("SIGTERM", "15", "TERM"):
        problems.append(f"STOPSIGNAL is {signal.arguments if signal else '(unset)'}, not SIGTERM")

    command = healthcheck_command(runtime)
    print(f"HEALTHCHECK: {command}")
    if command not in (["gatehouse", "healthcheck"], ["/usr/local/bin/gatehouse", "healthcheck"]):
        problems.append(f"HEALTHCHECK CMD is {command}, not [\"gatehouse\", \"healthcheck\"] (exec form: the image has no shell tools to spare)")

    entrypoint = runtime.last("ENTRYPOINT")
    entry = (entrypoint.json_arguments() if entrypoint else None) or []
    if entry[:1] not in (["gatehouse"], ["/usr/local/bin/gatehouse"]):
        problems.append("ENTRYPOINT must start gatehouse in exec form, so it is PID 1 and gets STOPSIGNAL itself")
    return report(problems)


def print_env(args):
    runtime = load_dockerfile(args.dockerfile)[-1]
    user = runtime.last("USER")
    print(json.dumps({
        "env": stage_env(runtime),
        "user": user.arguments if user else None,
        "healthcheck": healthcheck_command(runtime),
        "expose": stage_list(runtime, "EXPOSE"),
        "volumes": stage_list(runtime, "VOLUME"),
    }))
    return 0


# --- Compose -----------------------------------------------------------------


def environment_of(service):
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def seconds(text):
    total = 0.0
    for amount, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", str(text)):
        total += float(amount) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def nginx_directives(path, directive):
    with open(path, encoding="utf-8") as handle:
        text = "\n".join(line.split("#", 1)[0] for line in handle)
    return re.findall(rf"(?m)^[ \t]*{directive}[ \t]+([^;{{\n]+);", text)


def check_compose(args):
    import yaml  # PyYAML, from the test venv (Tests/Interop/requirements.txt)

    problems = []
    compose_path = args.compose
    base_dir = os.path.dirname(os.path.abspath(args.as_path or compose_path))
    with open(compose_path, encoding="utf-8") as handle:
        try:
            document = yaml.safe_load(handle)
        except yaml.YAMLError as error:
            print(f"does not parse: {error}")
            return 1
    if not isinstance(document, dict) or not isinstance(document.get("services"), dict):
        return report(["no services: mapping at the top level"])
    services = document["services"]
    volumes = document.get("volumes") or {}
    networks = document.get("networks") or {}
    print(f"services: {', '.join(services)}; volumes: {', '.join(volumes) or '-'}; networks: {', '.join(networks) or '-'}")

    def resolve(path, relative_to=base_dir):
        return os.path.normpath(os.path.join(relative_to, path))

    for required in ("gatehouse", "nginx", "app"):
        if required not in services:
            problems.append(f"no service {required}")

    runtime = load_dockerfile(args.dockerfile)[-1]
    image_env = stage_env(runtime)

    for name, service in services.items():
        if not isinstance(service, dict):
            problems.append(f"{name}: not a mapping")
            continue
        if "build" in service:
            build = service["build"]
            build = build if isinstance(build, dict) else {"context": build}
            context = resolve(build.get("context", "."))
            dockerfile = os.path.normpath(os.path.join(context, build.get("dockerfile", "Dockerfile")))
            print(f"{name}: build context {context}, Dockerfile {dockerfile}")
            if not os.path.isdir(context):
                problems.append(f"{name}: build context {context} is not a directory")
            if not os.path.isfile(dockerfile):
                problems.append(f"{name}: Dockerfile {dockerfile} does not exist")
            elif name == "gatehouse" and os.path.realpath(dockerfile) != os.path.realpath(args.dockerfile):
                problems.append(f"gatehouse: builds {dockerfile}, not {args.dockerfile}")
            if os.path.isfile(os.path.join(context, ".dockerignore")) is False:
                problems.append(f"{name}: no .dockerignore in the build context {context} (.build and .venv would be sent)")
        elif "image" in service:
            image = str(service["image"])
            if ":" not in image or image.endswith(":latest"):
                problems.append(f"{name}: image {image} is not pinned to a tag")
        else:
            problems.append(f"{name}: neither build nor image")

        for volume in service.get("volumes") or []:
            if isinstance(volume, dict):
                source, target, kind = volume.get("source"), volume.get("target"), volume.get("type", "volume")
            else:
                parts = str(volume).split(":")
                source, target = parts[0], parts[1] if len(parts) > 1 else parts[0]
                kind = "bind" if source.startswith((".", "/", "~")) else "volume"
            if kind == "bind":
                path = resolve(os.path.expanduser(source))
                print(f"{name}: mounts {path} at {target}")
                if not os.path.exists(path):
                    problems.append(f"{name}: mounts {source} ({path}), which does not exist")
            elif source not in volumes:
                problems.append(f"{name}: named volume {source} is not declared under volumes:")

        depends = service.get("depends_on") or {}
        if isinstance(depends, list):
            depends = {other: {"condition": "service_started"} for other in depends}
        for other, how in depends.items():
            condition = (how or {}).get("condition", "service_started")
            if other not in services:
                problems.append(f"{name}: depends_on {other}, which is not a service")
            elif condition == "service_healthy" and not (services[other] or {}).get("healthcheck"):
                problems.append(f"{name}: waits for {other} to be healthy, but {other} has no healthcheck")
            elif condition not in ("service_started", "service_healthy", "service_completed_successfully"):
                problems.append(f"{name}: depends_on {other} with unknown condition {condition}")

        healthcheck = service.get("healthcheck") or {}
        test = healthcheck.get("test")
        if not test or healthcheck.get("disable"):
            problems.append(f"{name}: no healthcheck")
        elif not isinstance(test, list) or test[0] not in ("CMD", "CMD-SHELL"):
            problems.append(f"{name}: healthcheck test should be an exec-form list starting with CMD")
        for network in (service.get("networks") or []):
            if network not in networks:
                problems.append(f"{name}: network {network} is not declared under networks:")

    published = {name: service.get("ports") or [] for name, service in services.items()}
    if not any(published.values()):
        problems.append("no service publishes a port")

    # Gatehouse: the image's settings plus compose's, its port, healthcheck and stop timeout.
    gatehouse = services.get("gatehouse") or {}
    env = dict(image_env)
    env.update(environment_of(gatehouse))
    port = env.get("GATEHOUSE_PORT", "8080")
    print(f"gatehouse: environment {json.dumps(environment_of(gatehouse))}, port {port}")
    if (gatehouse.get("healthcheck") or {}).get("test") != ["CMD", "gatehouse", "healthcheck"]:
        problems.append("gatehouse: the healthcheck should be [\"CMD\", \"gatehouse\", \"healthcheck\"], as in the Dockerfile")
    if not any(str(volume).split(":")[1:2] == [env.get("GATEHOUSE_DATA_DIR")] for volume in gatehouse.get("volumes") or []):
        problems.append(f"gatehouse: no volume at GATEHOUSE_DATA_DIR {env.get('GATEHOUSE_DATA_DIR')}")
    if seconds(gatehouse.get("stop_grace_period", "10s")) <= 10:
        problems.append("gatehouse: stop_grace_period must exceed the 10 s Gatehouse takes to finish requests in flight")

    # nginx: runs docker/nginx.conf as its comments say, and every upstream it names is a service on its port.
    nginx = services.get("nginx") or {}
    conf_target = "/etc/nginx/conf.d/default.conf"
    mounted = {str(v).split(":")[1]: resolve(str(v).split(":")[0]) for v in nginx.get("volumes") or [] if ":" in str(v)}
    if os.path.realpath(mounted.get(conf_target, "")) != os.path.realpath(args.nginx_conf):
        problems.append(f"nginx: {args.nginx_conf} is not mounted at {conf_target}")
    # What each service listens on: the `listen` ports of an nginx configuration
    # mounted into it, else what it exposes; Gatehouse: GATEHOUSE_PORT.
    listens = {}
    for name, service in services.items():
        ports = set()
        for volume in service.get("volumes") or []:
            source, _, target = str(volume).partition(":")
            target = target.split(":")[0]
            if target.startswith("/etc/nginx/conf.d/") and os.path.isfile(resolve(source)):
                ports |= {listen.split()[0].split(":")[-1] for listen in nginx_directives(resolve(source), "listen")}
        listens[name] = ports or {str(value).split("/")[0] for value in service.get("expose") or []}
    listens["gatehouse"] = {port}
    for name, service in services.items():
        for value in service.get("expose") or []:
            if str(value).split("/")[0] not in listens[name]:
                problems.append(f"{name}: exposes {value}, but listens on {sorted(listens[name])}")
    for server in nginx_directives(args.nginx_conf, "server"):
        address = server.split()[0]
        host, _, upstream_port = address.rpartition(":")
        print(f"nginx.conf upstream {address}: service {host} listens on {', '.join(sorted(listens.get(host, []))) or 'nothing'}")
        if host not in services:
            problems.append(f"nginx.conf names upstream {address}, but there is no service {host}")
        elif upstream_port not in listens[host]:
            problems.append(f"nginx.conf names upstream {address}, but {host} listens on {sorted(listens[host])}")
    nginx_listen = {listen.split()[0].split(":")[-1] for listen in nginx_directives(args.nginx_conf, "listen")}
    for mapping in published.get("nginx", []):
        container_port = str(mapping).split(":")[-1].split("/")[0]
        if container_port not in nginx_listen:
            problems.append(f"nginx: publishes {mapping}, but nginx.conf listens on {sorted(nginx_listen)}")

    # Trusted proxies: nginx's fixed address is trusted, and inside the network's subnet.
    trusted = [entry.strip() for entry in env.get("GATEHOUSE_TRUSTED_PROXIES", "").split(",") if entry.strip()]
    try:
        trusted_networks = [ipaddress.ip_network(entry, strict=False) for entry in trusted]
    except ValueError as error:
        problems.append(f"gatehouse: GATEHOUSE_TRUSTED_PROXIES: {error}")
        trusted_networks = []
    nginx_networks = nginx.get("networks") or {}
    addresses = [settings.get("ipv4_address") for settings in nginx_networks.values()
                 if isinstance(nginx_networks, dict) and isinstance(settings, dict) and settings.get("ipv4_address")]
    if not trusted:
        problems.append("gatehouse: GATEHOUSE_TRUSTED_PROXIES is not set: every client would count as nginx")
    elif not addresses:
        problems.append("nginx: no fixed ipv4_address, so GATEHOUSE_TRUSTED_PROXIES cannot name it")
    for address in addresses:
        ip = ipaddress.ip_address(address)
        if not any(ip in network for network in trusted_networks):
            problems.append(f"nginx's address {address} is not in GATEHOUSE_TRUSTED_PROXIES {trusted}")
        for network_name, network in networks.items():
            for pool in ((network or {}).get("ipam") or {}).get("config") or []:
                subnet = ipaddress.ip_network(pool["subnet"])
                if ip not in subnet:
                    problems.append(f"nginx's address {address} is outside {network_name}'s subnet {subnet}")
                if pool.get("ip_range") and ip in ipaddress.ip_network(pool["ip_range"]):
                    problems.append(f"nginx's address {address} is inside the dynamic ip_range {pool['ip_range']}")
    return report(problems)


def report(problems):
    if problems:
        print("PROBLEMS:")
        for problem in problems:
            print(f"- {problem}")
        return 1
    print("OK")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    libraries = commands.add_parser("libraries")
    libraries.add_argument("--binary", required=True)
    libraries.add_argument("--dockerfile", required=True)
    libraries.add_argument("--base-packages", required=True)
    dockerfile = commands.add_parser("dockerfile")
    dockerfile.add_argument("--dockerfile", required=True)
    dockerfile.add_argument("--makefile", required=True)
    dockerfile.add_argument("--binary", required=True, help="for the settings `gatehouse --help` lists")
    env = commands.add_parser("env")
    env.add_argument("--dockerfile", required=True)
    compose = commands.add_parser("compose")
    compose.add_argument("--compose", required=True)
    compose.add_argument("--as-path", help="resolve relative paths as if the file were here")
    compose.add_argument("--dockerfile", required=True)
    compose.add_argument("--nginx-conf", required=True)
    args = parser.parse_args()
    try:
        handler = {"libraries": check_libraries, "dockerfile": check_dockerfile, "env": print_env,
                   "compose": check_compose}[args.command]
        return handler(args)
    except SystemExit as error:
        if isinstance(error.code, str):
            print(error.code, file=sys.stderr)
            return 2
        raise
    except (OSError, ImportError) as error:
        print(f"{args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
