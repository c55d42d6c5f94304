"""Build script for swiftsocket.

The extension module ``swiftsocket._swiftsocket`` is not compiled by
setuptools: its ``build_ext`` step is replaced by a SwiftPM build of the
package in this directory, and the resulting shared library
(``libSwiftSocketExt.so``) is copied into the package as
``swiftsocket/_swiftsocket<EXT_SUFFIX>``.

Static metadata lives in pyproject.toml; this file only wires up the build.
"""

import os
import re
import shutil
import subprocess
import sys
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = os.path.dirname(os.path.abspath(__file__))
SWIFT_PRODUCT = "SwiftSocketExt"
SWIFT_FALLBACK = "/opt/swift/usr/bin/swift"
STARTUP_HOOK = "swiftsocket-autoinstall.pth"   # SWIFTSOCKET=1 (python/swiftsocket/_autoinstall.py)


MIN_SWIFT = (6, 0)   # typed throws


def find_swift():
    """The path of a ``swift`` driver of at least MIN_SWIFT, and its
    ``--version`` text; or exit at once with what to do."""
    candidates = []
    env = os.environ.get("SWIFT")
    if env:
        candidates.append(env)
    on_path = shutil.which("swift")
    if on_path:
        candidates.append(on_path)
    candidates.append(SWIFT_FALLBACK)
    advice = ("Install Swift %d.%d or newer from https://www.swift.org/install/ and put its usr/bin "
              "on PATH (or set SWIFT=/path/to/swift), or install a prebuilt wheel "
              "(pip install --only-binary :all: swiftsocket)." % MIN_SWIFT)
    found = [c for c in candidates if os.path.isfile(c) and os.access(c, os.X_OK)]
    if not found:
        sys.exit("error: building swiftsocket from source needs a Swift toolchain, but no 'swift' "
                 "was found on PATH, in $SWIFT or at %s. %s" % (SWIFT_FALLBACK, advice))
    swift = found[0]
    text = subprocess.run([swift, "--version"], capture_output=True, text=True).stdout
    match = re.search(r"Swift version (\d+)\.(\d+)", text)
    if not match or (int(match.group(1)), int(match.group(2))) < MIN_SWIFT:
        sys.exit("error: building swiftsocket from source needs Swift %d.%d or newer; %s is %s. %s"
                 % (MIN_SWIFT + (swift, match.group(0) if match else "of an unknown version", advice)))
    return swift, text


# Commands that compile: the toolchain is checked when setup.py starts, so a
# missing or old Swift is the first thing a source build reports.
COMPILING_COMMANDS = {"build", "build_ext", "bdist_wheel", "install", "develop", "editable_wheel"}
TOOLCHAIN = find_swift() if COMPILING_COMMANDS.intersection(sys.argv[1:]) else None


SANITIZERS = ("address", "thread")


def sanitizer_from_env():
    """SWIFTSOCKET_SANITIZE=address|thread builds the extension instrumented
    (for tools/sanitize.sh); unset or empty, a normal build."""
    sanitizer = os.environ.get("SWIFTSOCKET_SANITIZE", "")
    if sanitizer and sanitizer not in SANITIZERS:
        sys.exit("error: SWIFTSOCKET_SANITIZE=%s: expected one of %s"
                 % (sanitizer, ", ".join(SANITIZERS)))
    return sanitizer


class SwiftBuildExt(build_ext):
    """build_ext that runs ``swift build`` instead of a C compiler."""

    def build_extension(self, ext):
        if ext.name != "swiftsocket._swiftsocket":
            return super().build_extension(ext)

        swift, swift_version = TOOLCHAIN or find_swift()
        include = sysconfig.get_paths()["include"]
        if not os.path.isfile(os.path.join(include, "Python.h")):
            sys.exit(
                "error: Python.h not found in %s; install the CPython "
                "development headers for %s." % (include, sys.executable)
            )

        # One build folder per interpreter ABI (cpython-313t-x86_64-linux-gnu,
        # ...): builds for different Python headers never share products.
        abi = sysconfig.get_config_var("EXT_SUFFIX").strip(".").rsplit(".", 1)[0]
        sanitizer = sanitizer_from_env()
        # A sanitized build gets its own folder, so it never replaces the
        # products of the normal build (tools/sanitize.sh).
        scratch = os.path.join(ROOT, ".build-python", "%s-%s" % (sanitizer, abi) if sanitizer else abi)
        args = [
            "-c", "release",
            "--product", SWIFT_PRODUCT,   # not swiftsocket-limit, the bench's
            "--package-path", ROOT,
            "--scratch-path", scratch,
            "-Xcc", "-I" + include,
            "-Xcc", "-D_GNU_SOURCE",
            "-Xswiftc", "-static-stdlib",
        ]
        if sanitizer:
            # SwiftPM's option instruments the C shim as well as the Swift
            # code; the sanitizer runtime is left undefined, to be preloaded
            # into the (uninstrumented) interpreter.
            args += ["--sanitize", sanitizer]

        built = os.path.join(scratch, "release", "lib%s.so" % SWIFT_PRODUCT)

        # Never install a library left over from an earlier build: remove it
        # so that only a successful build in this run can produce it.
        if os.path.exists(built):
            os.remove(built)

        cmd = [swift, "build", *args]
        print("running: " + " ".join(cmd), flush=True)
        result = subprocess.run(cmd, cwd=ROOT)
        if result.returncode != 0:
            sys.exit("error: 'swift build' failed with exit status %d"
                     % result.returncode)
        if not os.path.isfile(built):
            sys.exit("error: 'swift build' succeeded but %s is missing" % built)

        dest = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        print("copying %s -> %s" % (built, dest), flush=True)
        shutil.copyfile(built, dest)
        os.chmod(dest, 0o755)
        write_build_info(os.path.join(os.path.dirname(dest), "_build_info.py"), swift_version)


def write_build_info(path, swift_version):
    """What `python -m swiftsocket doctor` reports about this build."""
    first_line = (swift_version.strip().splitlines() or ["unknown"])[0]
    threads = " free-threaded" if sysconfig.get_config_var("Py_GIL_DISABLED") else ""
    with open(path, "w") as out:
        out.write("# Written by setup.py when the extension was built.\n")
        out.write("INTERPRETER = %r\n" % ("CPython %s%s" % (".".join(map(str, sys.version_info[:3])), threads)))
        out.write("EXT_SUFFIX = %r\n" % sysconfig.get_config_var("EXT_SUFFIX"))
        out.write("SWIFT_VERSION = %r\n" % first_line)
        out.write("STATIC_SWIFT_RUNTIME = True  # -static-stdlib\n")


class BuildPyWithStartupHook(build_py):
    """Also puts swiftsocket-autoinstall.pth at the top of the install (the
    site-packages folder), where `site` runs it at every start-up."""

    def run(self):
        super().run()
        self.copy_file(os.path.join(ROOT, "python", STARTUP_HOOK), os.path.join(self.build_lib, STARTUP_HOOK))

    def get_outputs(self, include_bytecode=1):
        return super().get_outputs(include_bytecode) + [os.path.join(self.build_lib, STARTUP_HOOK)]


setup(
    package_dir={"": "python"},
    packages=["swiftsocket"],
    package_data={"swiftsocket": ["__init__.pyi", "py.typed"]},
    ext_modules=[Extension("swiftsocket._swiftsocket", sources=[])],
    cmdclass={"build_ext": SwiftBuildExt, "build_py": BuildPyWithStartupHook},
)
