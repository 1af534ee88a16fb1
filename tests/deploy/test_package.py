"""The FC code packages: right contents for CPython 3.12 on manylinux, and they import when unpacked.

Two flavours come out of one build (deploy/package.py): ``builtin`` (build/outpaint-fc.zip, s.yaml's
python3.12 runtime; no functions-framework) and ``custom`` (build/outpaint-fc-custom.zip, template.yaml's
custom runtime; everything plus the bootstrap).

The deliverables target CPython 3.12 (s.yaml runtime python3.12); their compiled wheels cannot load in
the interpreter running these tests unless that is 3.12 too. So the same build (same dependency sets,
same layout) is also made for the running interpreter's version, and those zips are unpacked and
imported in a fresh interpreter that sees nothing but the unpacked zip and the standard library. The
3.12 zips themselves are checked statically: every compiled module is cp312 or abi3.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = [pytest.mark.package, pytest.mark.slow]

TARGET = "3.12"
LOCAL = f"{sys.version_info.major}.{sys.version_info.minor}"
FLAVOURS = ("builtin", "custom")
NOT_IN_PRODUCTION = ("pytest", "_pytest", "hypothesis", "ruff", "dashscope", "alibabacloud_oss_v2", "yaml")
# functions-framework and what only it pulls in: the custom-runtime shim's stack. `rich` never comes
# with it (dashscope brings it into the dev venv) but is named because httpx imports its CLI when
# click and rich are both importable.
SHIM_ONLY = (
    "functions_framework",
    "flask",
    "werkzeug",
    "gunicorn",
    "click",
    "rich",
    "watchdog",
    "cloudevents",
)
RUNTIME = ("oss2", "crcmod", "httpx", "pydantic", "pydantic_core", "pydantic_settings", "PIL")


def _build(package_module: ModuleType, folder: Path, version: str) -> dict[str, Path]:
    start = time.monotonic()
    outs = package_module.build({name: folder / f"{name}.zip" for name in FLAVOURS}, version)
    sizes = ", ".join(f"{name} {path.stat().st_size / 1e6:.1f} MB" for name, path in outs.items())
    print(f"\npackages CPython {version}: {sizes}, in {time.monotonic() - start:.1f} s", file=sys.stderr)
    return outs


@pytest.fixture(scope="module")
def fc_zips(package_module: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _build(package_module, tmp_path_factory.mktemp("pkg"), TARGET)


@pytest.fixture(scope="module")
def local_zips(
    package_module: ModuleType, fc_zips: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    if LOCAL == TARGET:
        return fc_zips
    return _build(package_module, tmp_path_factory.mktemp("pkg-local"), LOCAL)


def _tops(names: list[str]) -> set[str]:
    return {n.split("/", 1)[0] for n in names}


def test_flavours_are_the_deploy_files_paths(package_module: ModuleType) -> None:
    root = package_module.ROOT
    assert package_module.FLAVOURS["builtin"].out == root / "build" / "outpaint-fc.zip"
    assert package_module.FLAVOURS["custom"].out == root / "build" / "outpaint-fc-custom.zip"
    # One source of truth: pyproject. The shim's dependency is declared, but not for the built-in runtime.
    builtin = {package_module._name(r) for r in package_module.project_dependencies()}
    custom = {package_module._name(r) for r in package_module.project_dependencies(("custom-runtime",))}
    assert "functions-framework" not in builtin
    assert custom - builtin == {"functions-framework"}


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_zip_holds_the_handler_the_code_and_the_dependencies(fc_zips: dict[str, Path], flavour: str) -> None:
    with zipfile.ZipFile(fc_zips[flavour]) as zf:
        names = zf.namelist()
    tops = _tops(names)
    assert "handler.py" in names
    assert "outpaint/__init__.py" in names
    assert "outpaint/config.py" in names
    assert "outpaint/runtime.py" in names  # the handlers read the FC context through it
    for module in RUNTIME:
        assert module in tops, f"{module} missing"
    assert not [n for n in names if n.startswith("outpaint/local/")], "the emulators are not shipped"
    assert not [n for n in names if n.startswith(("outpaint/cli/", "outpaint/__main__"))], "nor the CLI"
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo"))]
    assert not tops & set(NOT_IN_PRODUCTION), "no test or local-stack dependencies"
    assert not [n for n in names if n.startswith("bin/")]
    assert not [n for n in names if n.endswith("/direct_url.json")], "no temporary paths of the build"
    # oss2 comes without the sdist-only crcmod; crcmod-plus provides the module.
    assert any(re.match(r"crcmod_plus-[\d.]+\.dist-info/", n) for n in names)
    assert not any(re.match(r"crcmod-[\d.]+\.dist-info/", n) for n in names)


def test_builtin_zip_has_no_custom_runtime_stack(fc_zips: dict[str, Path]) -> None:
    with zipfile.ZipFile(fc_zips["builtin"]) as zf:
        names = zf.namelist()
    tops = _tops(names)
    assert not tops & set(SHIM_ONLY), sorted(tops & set(SHIM_ONLY))
    dists = {n.split("-", 1)[0].lower() for n in tops if n.endswith(".dist-info")}
    assert not dists & {m.lower() for m in SHIM_ONLY}, sorted(dists)
    assert "bootstrap" not in names, "the built-in runtime does not use the bootstrap"


def test_custom_zip_is_the_builtin_zip_plus_the_shim(fc_zips: dict[str, Path]) -> None:
    with zipfile.ZipFile(fc_zips["builtin"]) as zf:
        builtin = {i.filename: i.CRC for i in zf.infolist()}
    with zipfile.ZipFile(fc_zips["custom"]) as zf:
        custom = {i.filename: i.CRC for i in zf.infolist()}
        infos = {i.filename: i for i in zf.infolist()}
        bootstrap = zf.read("bootstrap").decode()
    # Same versions, same bytes: both flavours are installed from one download.
    assert {n: custom.get(n) for n in builtin} == builtin
    extra = _tops(list(set(custom) - set(builtin)))
    for module in ("functions_framework", "flask", "gunicorn", "click", "bootstrap"):
        assert module in extra, module
    # The custom-runtime entry point is executable and pinned to the target version.
    assert (infos["bootstrap"].external_attr >> 16) & 0o111
    assert bootstrap.startswith("#!/bin/bash")
    assert "@PYTHON_VERSION@" not in bootstrap
    assert f'"{TARGET}"' in bootstrap
    assert "-m outpaint.runtime" in bootstrap


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_compiled_modules_match_fc_python_312_on_manylinux(fc_zips: dict[str, Path], flavour: str) -> None:
    with zipfile.ZipFile(fc_zips[flavour]) as zf:
        names = zf.namelist()
        wheels = [zf.read(n).decode() for n in names if n.endswith(".dist-info/WHEEL")]
    extensions = [n for n in names if n.endswith(".so")]
    assert extensions, "pydantic-core, Pillow and crcmod-plus ship compiled modules"
    for so in extensions:
        base = so.rsplit("/", 1)[-1]
        if ".cpython-" in base:
            assert ".cpython-312-x86_64-linux-gnu.so" in base, so
        elif ".abi3." not in base:
            assert ".so." in so or base.startswith("lib") or "/" in so, so  # vendored shared libraries
    for wheel in wheels:
        for tag in re.findall(r"^Tag: (.+)$", wheel, re.MULTILINE):
            python, abi, platform = tag.split("-")
            assert platform == "any" or "manylinux" in platform, tag
            assert platform == "any" or "x86_64" in platform, tag
            assert python.startswith(("py3", "py2", "cp312", "cp3")), tag
            if abi not in ("none", "abi3"):
                assert abi == "cp312", tag


def test_zip_sizes_are_reported_and_reasonable(fc_zips: dict[str, Path]) -> None:
    sizes = {}
    for flavour, path in fc_zips.items():
        with zipfile.ZipFile(path) as zf:
            unpacked = sum(i.file_size for i in zf.infolist())
        sizes[flavour] = path.stat().st_size
        print(
            f"\n{flavour}: {path.stat().st_size / 1e6:.1f} MB zipped, {unpacked / 1e6:.1f} MB unpacked",
            file=sys.stderr,
        )
        # FC accepts up to 500 MB unpacked for a directly uploaded zip; stay far below it.
        assert path.stat().st_size < 50e6
        assert unpacked < 200e6
    assert sizes["builtin"] < sizes["custom"]


SMOKE = r"""
import importlib, importlib.util, json, os, pkgutil, sys, sysconfig
from types import SimpleNamespace
root, flavour = sys.argv[1], sys.argv[2]
sys.path.insert(0, root)
os.environ.update({"OUTPAINT_BUCKET": "smoke-bucket", "DASHSCOPE_API_KEY": "sk-smoke"})
SHIM_ONLY = ("functions_framework", "flask", "werkzeug", "gunicorn", "click", "rich", "watchdog")
# httpx imports its CLI (click, rich) whenever it can: in the custom zip that loads click (and fails
# on rich), a cold-start cost the builtin zip does not pay. It is httpx's doing, not the handlers'.
HTTPX_CLI = ("click", "rich")

def shim_modules():
    return sorted(m for m in sys.modules if m.split(".")[0] in SHIM_ONLY and m.split(".")[0] not in HTTPX_CLI)

import handler
for name in ("on_upload", "on_tick", "initialize"):
    assert callable(getattr(handler, name)), name
handler.initialize(None)  # reads Settings from the environment (pydantic + pydantic-settings)
# A first invocation (a malformed event is answered without network): the handler path as FC runs it.
context = SimpleNamespace(request_id="r", credentials=None, function=SimpleNamespace(name="f", timeout=90))
result = handler.on_upload(b'{"events": [{"eventName": "ObjectCreated:PutObject"}]}', context)
assert result["error"] == "event.malformed", result
import outpaint
assert outpaint.__file__.startswith(root), outpaint.__file__
modules = sorted(m.name for m in pkgutil.walk_packages(outpaint.__path__, "outpaint."))
assert not [m for m in modules if m.startswith(("outpaint.local", "outpaint.cli"))], modules
for name in modules:
    importlib.import_module(name)
import oss2, oss2.utils, crcmod.crcmod, httpx, PIL.Image, pydantic_core
# The handlers and every shipped module, imported and called, load nothing of the shim's stack
# (outpaint.runtime imports functions_framework only inside main()).
assert not shim_modules(), shim_modules()
httpx_cli = sorted({m.split(".")[0] for m in sys.modules} & set(HTTPX_CLI))
if flavour == "builtin":
    assert not httpx_cli, httpx_cli
    assert not [m for m in SHIM_ONLY if importlib.util.find_spec(m)], "shim stack in the builtin zip"
else:
    import outpaint.runtime
    from functions_framework import create_app
    app = create_app(target="fc_invoke", source=outpaint.runtime.__file__, signature_type="http")
    response = app.test_client().post("/invoke", data=b"{}", headers={"x-fc-function-handler": "nope.x"})
    assert response.status_code == 500 and response.headers["x-fc-status"] == "404", response
crc = oss2.utils.Crc64(0)
crc.update(b"123456789")
assert crc.crc == 11051210869376104954, crc.crc
assert crcmod.crcmod._usingExtension, "crcmod-plus C extension not loaded"
import io
img = PIL.Image.new("RGB", (8, 8)); buf = io.BytesIO(); img.save(buf, "PNG")
assert PIL.Image.open(io.BytesIO(buf.getvalue())).size == (8, 8)
stdlib = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib")}
outside = sorted(
    m.__name__ for m in list(sys.modules.values())
    if getattr(m, "__file__", None)
    and not m.__file__.startswith(root)
    and not any(m.__file__.startswith(p) for p in stdlib)
)
assert not outside, f"imported from outside the package: {outside}"
print(json.dumps({"modules": len(modules), "loaded": len(sys.modules), "httpx_cli": httpx_cli}))
"""


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_unpacked_zip_imports_in_a_fresh_interpreter(
    local_zips: dict[str, Path], flavour: str, tmp_path: Path
) -> None:
    root = tmp_path / "code"
    with zipfile.ZipFile(local_zips[flavour]) as zf:
        zf.extractall(root)
    env = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"}
    start = time.monotonic()
    # -I: ignore PYTHON* variables and the user site; -S: no site-packages (so not the venv).
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", SMOKE, str(root), flavour],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"\nimport smoke test ({flavour}): {time.monotonic() - start:.1f} s, {stats}", file=sys.stderr)


def test_bootstrap_refuses_a_python_it_was_not_built_for(fc_zips: dict[str, Path], tmp_path: Path) -> None:
    if LOCAL == TARGET:
        pytest.skip("the local interpreter is the target version")
    with zipfile.ZipFile(fc_zips["custom"]) as zf:
        zf.extract("bootstrap", tmp_path)
    path = tmp_path / "bootstrap"
    path.chmod(0o755)
    env = {"PATH": os.environ.get("PATH", ""), "OUTPAINT_PYTHON": sys.executable}
    proc = subprocess.run([str(path)], capture_output=True, text=True, env=env, timeout=30, check=False)
    assert proc.returncode == 1
    assert f"holds CPython {TARGET} wheels" in proc.stderr
