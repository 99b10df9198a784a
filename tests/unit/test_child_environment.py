"""The allow-list that decides what opencode, its tools and git inherit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.adapters.system import child_environment


def test_what_children_need_passes_and_ours_does_not() -> None:
    """System, locale, proxy, ssh and provider variables pass; ours and unknown ones do not."""
    base = {
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "LC_ALL": "C.UTF-8",
        "XDG_DATA_HOME": "/x",
        "https_proxy": "http://p:3128",
        "SSH_AUTH_SOCK": "/s",
        "ANTHROPIC_API_KEY": "k1",
        "AWS_PROFILE": "bedrock",
        "OPENCODE_CONFIG": "/c.json",
        "MACHINE_TOKEN": "mch_a:sec_b",
        "ORCHESTRATOR_SERVER_SECRET": "s",
        "ORCHESTRATOR_API_KEY": "s",
        "CONVEX_URL": "https://x.convex.cloud",
        "CONVEX_DEPLOY_KEY": "d",
        "OPENCODE_SERVER_PASSWORD": "p",
        "DATABASE_PASSWORD": "x",
        "GITHUB_TOKEN": "ghp",
    }
    assert sorted(child_environment(base)) == [
        "ANTHROPIC_API_KEY",
        "AWS_PROFILE",
        "HOME",
        "LC_ALL",
        "OPENCODE_CONFIG",
        "PATH",
        "SSH_AUTH_SOCK",
        "XDG_DATA_HOME",
        "https_proxy",
    ]


@given(st.sampled_from(["MACHINE_", "ORCHESTRATOR_", "CONVEX_"]), st.text(min_size=1))
def test_nothing_of_ours_passes_whatever_its_name_ends_with(prefix: str, rest: str) -> None:
    """A variable of ours never passes, even one named like a provider key."""
    name = prefix + rest + "_API_KEY"
    assert child_environment({name: "secret", "PATH": "/bin"}) == {"PATH": "/bin"}


def test_the_user_can_name_further_variables_but_never_ours() -> None:
    """ORCHESTRATOR_AGENT_ENV adds names; it cannot let a variable of ours through."""
    base = {
        "ORCHESTRATOR_AGENT_ENV": "GITHUB_TOKEN, MACHINE_TOKEN",
        "GITHUB_TOKEN": "ghp",
        "MACHINE_TOKEN": "mch_a:sec_b",
    }
    assert child_environment(base) == {"GITHUB_TOKEN": "ghp"}
