"""The shared plugin cache under parallel runs (CI runners plan several apps at once with one cache): an init links
the provider the cache already holds and leaves the cache alone, so a terraform starting meanwhile in another run
still finds its provider; and terraform's coloured failures read as one plain line."""
from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tfreview.config import Settings
from tfreview.terraform import Result, Terraform, first_error

VERSIONS_TF = Path(__file__).parent.parent / "terraform" / "modules" / "ecs-webapp" / "versions.tf"


def _entry(cache: Path) -> os.stat_result:
    (entry,) = cache.glob("registry.terraform.io/hashicorp/aws/*/*")
    return entry.lstat()


@pytest.mark.skipif(not shutil.which(os.environ.get("TFREVIEW_TERRAFORM_BIN", "terraform")), reason="no terraform")
@pytest.mark.skipif(not os.environ.get("TFREVIEW_PROVIDER_MIRROR"), reason="no provider mirror (make test sets it)")
def test_parallel_inits_link_the_cached_provider_and_leave_the_cache_untouched(tmp_path):
    settings = Settings(terraform_bin=os.environ.get("TFREVIEW_TERRAFORM_BIN", "terraform"),
                        provider_mirror=os.environ.get("TFREVIEW_PROVIDER_MIRROR") or None,
                        plugin_cache_dir=str(tmp_path / "cache" / "plugins"))

    def init(n: int) -> None:
        work = tmp_path / f"w{n}"
        work.mkdir()
        shutil.copy(VERSIONS_TF, work)
        Terraform(settings, work).init(backend_config=None)
        assert list(work.glob(".terraform/providers/registry.terraform.io/hashicorp/aws/*/*")), f"w{n} has no provider"

    init(0)  # fills the cache
    before = _entry(Path(settings.plugin_cache_dir))
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(init, range(1, 5)))
    after = _entry(Path(settings.plugin_cache_dir))
    # Re-installed, the entry is removed and made again (a window in which other runs find no provider).
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_coloured_boxed_failure_reads_as_its_error_line():
    stderr = ("\x1b[31m\x1b[31m╷\x1b[0m\x1b[0m\n\x1b[31m│\x1b[0m \x1b[0m\x1b[1m\x1b[33mWarning: \x1b[0m\x1b[0m\x1b[1mold\n"
              "\x1b[31m│\x1b[0m \x1b[0m\x1b[1m\x1b[31mError: \x1b[0m\x1b[0m\x1b[1mFailed to load plugin schemas\x1b[0m\n"
              "\x1b[31m╵\x1b[0m\x1b[0m\n")
    assert first_error(Result(1, "", stderr)) == "Error: Failed to load plugin schemas"
    assert first_error(Result(1, "", "\x1b[31m╷\x1b[0m\n\x1b[31m╵\x1b[0m\n")) == "exit code 1"
    assert first_error(Result(1, "", "plain words\n")) == "plain words"
