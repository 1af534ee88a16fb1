"""Build the deployable code packages for Function Compute, in two flavours from one dependency list.

    python deploy/package.py [--flavour builtin|custom|all] [--python-version 3.12] [--out PATH]

``builtin`` -> ``build/outpaint-fc.zip``: what ``s.yaml`` deploys (built-in ``python3.12`` runtime,
which calls ``handler.on_upload`` / ``handler.on_tick`` itself). pyproject's ``[project] dependencies``
only: no ``functions-framework``, hence no flask, gunicorn, click, watchdog, ... (and ``import httpx``
does not load its click-based CLI).

``custom`` -> ``build/outpaint-fc-custom.zip``: what ``template.yaml`` deploys (Funcraft runtime
``custom``, whose ``bootstrap`` starts the shim ``python -m outpaint.runtime``). The same plus the
optional-dependency group ``custom-runtime`` (``functions-framework``) and the ``bootstrap``.

Without ``--flavour`` (or with ``all``) both are built; ``--out`` needs a single flavour.

Both zips' roots hold ``handler.py``, the ``outpaint`` package without ``outpaint/local`` (the
emulators) and the operator CLI (``outpaint/cli``, ``__main__``): nothing on the handlers' import path
uses them (the smoke test proves it), and the dependencies installed for manylinux x86_64 and the
target CPython, binary wheels only (no build step runs for the target). No test dependencies, no
``__pycache__``/``*.pyc``. The wheels for all requested flavours are downloaded in one ``pip download``
(one resolution of the largest set) and each flavour is installed from that folder with ``--no-index``,
so the shared dependencies are the same versions, byte for byte, in both zips.

Two dependencies publish only source distributions:
- ``oss2`` is pure Python: it is built into a wheel here (``pip wheel``, cached by pip) and installed
  with ``--no-deps``; its own requirements are read from that wheel and installed as binary wheels.
- ``crcmod`` (required by oss2) has a C extension, so a locally built wheel would match this machine,
  not FC. ``crcmod-plus`` ships manylinux abi3 wheels of the same ``crcmod`` module (same API) and is
  installed instead; the smoke test checks oss2's CRC-64 through it.

The zips are reproducible: entries sorted, timestamps fixed, permissions normalised.
"""

from __future__ import annotations

import argparse
import email.parser
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pip vendors the same parser
    from pip._vendor import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
DEFAULT_PYTHON = "3.12"  # s.yaml runtime python3.12
SOURCE_ONLY = {"oss2"}  # built into a wheel locally (pure Python)
REPLACED = {"crcmod": "crcmod-plus==2.3.6"}  # sdist with a C extension -> binary drop-in
# glibc: FC python3.12 is Debian 11 (2.31), python3.10 Debian 10 (2.28). Pillow 13 ships only
# manylinux_2_27/2_28 wheels, so manylinux2014 alone would not find it; 2_28 is the highest both take.
PLATFORMS = ["manylinux2014_x86_64"] + [f"manylinux_2_{v}_x86_64" for v in (17, 24, 26, 27, 28)]
# Never imported by handler.py's code path: outpaint.local (emulators, local FC runner) and the
# operator CLI (outpaint.cli, `python -m outpaint`), which runs on a workstation, not in FC.
EXCLUDED_PACKAGES = {"local", "cli", "__main__.py"}
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
# zlib's default. Level 9 takes about 4x as long for a zip 0.5 % smaller. (The level is passed per
# entry: ZipFile's own compresslevel does not apply to entries written from a ZipInfo.)
ZIP_LEVEL = 6


@dataclass(frozen=True)
class Flavour:
    """One code package: which pyproject dependency groups it installs and where it is written."""

    name: str
    out: Path
    # pyproject [project.optional-dependencies] groups installed on top of [project] dependencies.
    extras: tuple[str, ...]
    bootstrap: bool  # ship deploy/bootstrap (custom runtime only)
    used_by: str


FLAVOURS: dict[str, Flavour] = {
    "builtin": Flavour("builtin", BUILD / "outpaint-fc.zip", (), False, "s.yaml (runtime python3.12)"),
    # functions-framework serves only the custom-runtime shim (outpaint.runtime.main / fc_invoke, which
    # import it lazily); it lives in the `custom-runtime` group so the built-in package goes without it.
    "custom": Flavour(
        "custom",
        BUILD / "outpaint-fc-custom.zip",
        ("custom-runtime",),
        True,
        "template.yaml (runtime custom)",
    ),
}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _pyproject() -> dict:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["project"]


def project_dependencies(extras: tuple[str, ...] = ()) -> list[str]:
    """pyproject's [project] dependencies plus the named optional-dependency groups."""
    project = _pyproject()
    requirements = list(project["dependencies"])
    for extra in extras:
        requirements += project["optional-dependencies"][extra]
    return requirements


def _pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet", *args]
    subprocess.run(cmd, check=True)  # noqa: S603 - fixed pip arguments built here


def _wheel_requirements(wheel: Path) -> list[str]:
    """Requires-Dist of a wheel, without extras-only requirements."""
    with zipfile.ZipFile(wheel) as zf:
        meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(zf.read(meta_name).decode())
    return [r for r in meta.get_all("Requires-Dist") or [] if "extra ==" not in r]


def _local_wheel(req: str, wheel_dir: Path) -> Path:
    """A source-only, pure-Python dependency built into a wheel (pip caches the build)."""
    built = sorted(wheel_dir.glob(_name(req).replace("-", "_") + "-*.whl"))
    if built:  # already built for another flavour of this build
        return built[0]
    _pip("wheel", "--no-deps", "--wheel-dir", str(wheel_dir), req)
    wheel = next(wheel_dir.glob(_name(req).replace("-", "_") + "-*.whl"))
    if not wheel.name.endswith("-py3-none-any.whl") and "-py2.py3-none-any" not in wheel.name:
        raise SystemExit(f"package.py: {wheel.name} is not pure Python; it cannot be built here for FC")
    return wheel


def _split(requirements: list[str], wheel_dir: Path) -> tuple[list[str], list[Path]]:
    """Requirements to install as binary wheels for the target, and locally built wheels (--no-deps)."""
    binary: list[str] = []
    local_wheels: list[Path] = []
    for req in requirements:
        if _name(req) not in SOURCE_ONLY:
            binary.append(req)
            continue
        wheel = _local_wheel(req, wheel_dir)
        local_wheels.append(wheel)
        binary += [REPLACED.get(_name(sub), sub) for sub in _wheel_requirements(wheel)]
    return list(dict.fromkeys(binary)), local_wheels


def _target_args(python_version: str) -> list[str]:
    platform_args = [arg for p in PLATFORMS for arg in ("--platform", p)]
    return [
        "--python-version",
        python_version,
        "--implementation",
        "cp",
        *platform_args,
        "--only-binary=:all:",
    ]


def download_wheels(requirements: list[str], dest: Path, python_version: str) -> None:
    """Every wheel the requirements resolve to, for the target, into ``dest`` (one resolution)."""
    _pip("download", "--dest", str(dest), *_target_args(python_version), *requirements)


def install_dependencies(
    target: Path, binary: list[str], local_wheels: list[Path], wheels: Path, python_version: str
) -> None:
    """Install from the downloaded wheels only (``--no-index``): no second resolution against PyPI."""
    _pip(
        "install",
        "--target",
        str(target),
        "--no-index",
        "--find-links",
        str(wheels),
        *_target_args(python_version),
        "--no-compile",
        *binary,
    )
    _pip("install", "--target", str(target), "--no-deps", "--no-compile", *map(str, local_wheels))
    _drop_install_markers(target)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def extend_dependencies(
    base: Path, target: Path, wheels: Path, local_wheels: list[Path], python_version: str
) -> bool:
    """``target`` = the installed ``base`` (hard links) + every downloaded wheel ``base`` lacks.

    Only valid for a flavour whose requirements are the whole download and include ``base``'s: then
    its closure is exactly the downloaded wheels. Returns False (and leaves no ``target``) if an
    added wheel would share a top-level name with ``base`` (a namespace package): install afresh then.
    """
    have = {_canonical(d.name.split("-", 1)[0]) for d in base.glob("*.dist-info")}
    candidates = [*sorted(wheels.glob("*.whl")), *local_wheels]
    extra = [w for w in candidates if _canonical(w.name.split("-", 1)[0]) not in have]
    shutil.copytree(base, target, copy_function=os.link)
    if not extra:
        return True
    added = target.with_name(target.name + "-added")
    _pip(
        "install",
        "--target",
        str(added),
        "--no-deps",
        "--no-index",
        *_target_args(python_version),
        "--no-compile",
        *map(str, extra),
    )
    shutil.rmtree(added / "bin", ignore_errors=True)
    items = list(added.iterdir())
    if any((target / item.name).exists() for item in items):
        shutil.rmtree(target)
        return False
    for item in items:
        item.rename(target / item.name)
    _drop_install_markers(target)
    return True


def _drop_install_markers(target: Path) -> None:
    """Remove pip's per-install markers so the zip does not depend on how it was installed.

    ``direct_url.json`` holds the temporary path of a wheel installed from a file; ``REQUESTED`` says
    whether the wheel was named on the command line. FC needs neither. The RECORD files are rewritten
    to new files (never in place: the stages share files through hard links).
    """
    for dist_info in target.glob("*.dist-info"):
        dropped = [dist_info / n for n in ("direct_url.json", "REQUESTED") if (dist_info / n).exists()]
        if not dropped:
            continue
        prefixes = tuple(f"{dist_info.name}/{p.name}," for p in dropped)
        for path in dropped:
            path.unlink()
        record = dist_info / "RECORD"
        lines = record.read_bytes().decode().splitlines(keepends=True)  # as written (CRLF)
        fresh = record.with_name("RECORD.new")
        fresh.write_bytes("".join(x for x in lines if not x.startswith(prefixes)).encode())
        fresh.replace(record)


def copy_sources(target: Path, python_version: str, bootstrap: bool) -> None:
    shutil.copy2(ROOT / "handler.py", target / "handler.py")
    src = ROOT / "src" / "outpaint"

    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = {n for n in names if n == "__pycache__" or n.endswith((".pyc", ".pyo"))}
        if Path(directory) == src:
            skipped |= {n for n in names if n in EXCLUDED_PACKAGES}
        return skipped

    shutil.copytree(src, target / "outpaint", ignore=ignore)
    if bootstrap:
        text = (ROOT / "deploy" / "bootstrap").read_text(encoding="utf-8")
        (target / "bootstrap").write_text(text.replace("@PYTHON_VERSION@", python_version), encoding="utf-8")


def write_zip(source: Path, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".zip.tmp")
    files = sorted(
        p
        for p in source.rglob("*")
        if p.is_file() and not (set(p.relative_to(source).parts) & {"__pycache__"}) and p.suffix != ".pyc"
    )
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), date_time=FIXED_TIME)
            executable = path.name == "bootstrap"
            info.external_attr = ((0o755 if executable else 0o644) | 0o100000) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes(), compresslevel=ZIP_LEVEL)
    tmp.replace(out)


def build(outs: Mapping[str, Path] | None = None, python_version: str = DEFAULT_PYTHON) -> dict[str, Path]:
    """Build the flavours named in ``outs`` (flavour -> zip path; default: both, to their usual paths).

    The wheels are downloaded once for all of them; each flavour is then installed from that folder.
    """
    if outs is None:
        outs = {name: flavour.out for name, flavour in FLAVOURS.items()}
    unknown = set(outs) - set(FLAVOURS)
    if unknown:
        raise ValueError(f"unknown flavour(s) {sorted(unknown)}; known: {sorted(FLAVOURS)}")
    with tempfile.TemporaryDirectory(prefix="outpaint-package-") as tmp:
        work = Path(tmp)
        local_dir, wheels = work / "local-wheels", work / "wheels"
        plans = {name: _split(project_dependencies(FLAVOURS[name].extras), local_dir) for name in outs}
        union = list(dict.fromkeys(req for binary, _ in plans.values() for req in binary))
        download_wheels(union, wheels, python_version)
        stages: dict[str, Path] = {}
        for name in sorted(outs, key=lambda n: len(plans[n][0])):  # smaller sets first
            binary, local_wheels = plans[name]
            # The largest flavour is a smaller one already installed plus the rest of the download.
            base = next(
                (
                    stages[other]
                    for other in stages
                    if set(plans[other][0]) <= set(binary) and set(plans[other][1]) <= set(local_wheels)
                ),
                None,
            )
            stage = stages[name] = work / f"stage-{name}"
            extendable = set(binary) == set(union) and base is not None
            if extendable and extend_dependencies(base, stage, wheels, local_wheels, python_version):
                continue
            stage.mkdir()
            install_dependencies(stage, binary, local_wheels, wheels, python_version)
            # pip --target may leave console scripts and caches that FC does not need.
            shutil.rmtree(stage / "bin", ignore_errors=True)
        # Sources last: the stages share the dependencies' files through hard links.
        for name in outs:
            copy_sources(stages[name], python_version, bootstrap=FLAVOURS[name].bootstrap)
        # zlib releases the GIL while it compresses: the zips are written side by side.
        with ThreadPoolExecutor(max_workers=len(outs)) as pool:
            for done in [pool.submit(write_zip, stages[name], out) for name, out in outs.items()]:
                done.result()
    return dict(outs)


def describe(out: Path) -> str:
    with zipfile.ZipFile(out) as zf:
        unpacked = sum(i.file_size for i in zf.infolist())
        count = len(zf.infolist())
    shown = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
    return (
        f"{shown}: {out.stat().st_size / 1e6:.1f} MB zipped, {unpacked / 1e6:.1f} MB unpacked, {count} files"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument(
        "--flavour",
        choices=[*FLAVOURS, "all"],
        default="all",
        help="builtin (s.yaml), custom (template.yaml) or all (default)",
    )
    parser.add_argument("--python-version", default=DEFAULT_PYTHON, help="target CPython, e.g. 3.12")
    parser.add_argument("--out", type=Path, help="zip path (only with a single --flavour)")
    args = parser.parse_args(argv)
    names = list(FLAVOURS) if args.flavour == "all" else [args.flavour]
    if args.out is not None and len(names) != 1:
        parser.error("--out needs a single --flavour")
    outs = {name: args.out or FLAVOURS[name].out for name in names}
    start = time.monotonic()
    build(outs, args.python_version)
    elapsed = time.monotonic() - start
    for name, out in outs.items():
        print(f"{describe(out)}, {name} flavour for {FLAVOURS[name].used_by}, CPython {args.python_version}")
    print(f"built in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
