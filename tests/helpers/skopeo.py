"""skopeo, as the tests use it: plain HTTP to loopback, no system trust policy, no proxy escape."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers.images import DOCKER, MultiArchImage
from tests.helpers.procs import isolated_env, require_binary, run


@dataclass(frozen=True)
class Skopeo:
    """Runs skopeo with `--insecure-policy` (no /etc/containers/policy.json needed) and TLS off.

    Every call fails the test with skopeo's output when skopeo exits non-zero.
    """

    binary: str = field(default_factory=lambda: require_binary("skopeo"))
    env: dict[str, str] = field(default_factory=isolated_env)

    def __call__(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return run([self.binary, "--insecure-policy", *args], timeout=timeout, env=self.env)

    def inspect_raw(self, reference: str) -> bytes:
        """The manifest bytes exactly as the registry serves them (binary, no newline mangling)."""
        argv = [
            self.binary,
            "--insecure-policy",
            "inspect",
            "--raw",
            "--tls-verify=false",
            reference,
        ]
        result = subprocess.run(
            argv,
            check=False,
            capture_output=True,
            timeout=60,
            env=self.env,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            pytest.fail(
                f"{' '.join(argv)} failed:\n{result.stderr.decode(errors='replace')}", pytrace=False
            )
        return result.stdout

    def copy_all(self, source: str, destination: str, *flags: str) -> None:
        """`skopeo copy --all --preserve-digests`: any conversion becomes an error, not a diff."""
        self(
            "copy",
            "--all",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            *flags,
            source,
            destination,
        )

    def list_tags(self, reference: str) -> list[str]:
        output = self("list-tags", "--tls-verify=false", reference).stdout
        return list(json.loads(output)["Tags"])

    def delete(self, reference: str) -> None:
        self("delete", "--tls-verify=false", reference)


def layout_reference(directory: Path, image: MultiArchImage, tag: str = "v1") -> str:
    """The skopeo name of a layout written by `write_oci_layout(image, directory, tag)`.

    skopeo 1.9 looks a tag up only among entries of OCI media types ("no descriptor found for
    reference"), but takes a layout's single entry whatever its type: so a Docker manifest list
    is named without its tag.
    """
    if image.flavour is DOCKER:
        return f"oci:{directory}"
    return f"oci:{directory}:{tag}"
